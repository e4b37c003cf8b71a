import type { SystemKeyHandle } from '../crypto/systemKeyHandle.js';
import { KeyledgerError } from '../domain/errors.js';
import type { ManagedKeyProvider } from '../providers/managedKeyProvider.js';

/**
 * The provider as the system-key manager sees it: a system key the ledger has retired is never
 * handed out again. Fetching one to unwrap with fails, and so does a provider whose current system
 * key is a retired one (a rotation would make it the key new DEKs are wrapped under). Either is
 * ERR_SYSTEM_KEY_RETIRED; the handle the provider made is disposed first.
 */
export function refuseRetiredSystemKeys(
  provider: ManagedKeyProvider,
  isRetired: (identity: string) => boolean,
): ManagedKeyProvider {
  const check = (handle: SystemKeyHandle, what: string): SystemKeyHandle => {
    // The same bytes under either identity (version 2, or the version-1 checksum) are one key.
    const retired = handle.identities.find(isRetired);
    if (retired === undefined) return handle;
    const identity = retired;
    handle.dispose();
    throw new KeyledgerError(
      'ERR_SYSTEM_KEY_RETIRED',
      `${what} ${identity} is retired and is not used again`,
      {
        identity,
      },
    );
  };
  return {
    kind: provider.kind,
    getSystemKey: async () => check(await provider.getSystemKey(), "the provider's current system key"),
    unwrapSystemKey: async (metadata) => check(await provider.unwrapSystemKey(metadata), 'system key'),
    getManagedKey: (scope) => provider.getManagedKey(scope),
    unwrapKey: (metadata, material) => provider.unwrapKey(metadata, material),
    close: () => provider.close(),
    // A key just created is new, so it cannot be a retired one.
    ...(provider.createSystemKey === undefined
      ? {}
      : { createSystemKey: provider.createSystemKey.bind(provider) }),
    ...(provider.destroySystemKey === undefined
      ? {}
      : { destroySystemKey: provider.destroySystemKey.bind(provider) }),
  };
}

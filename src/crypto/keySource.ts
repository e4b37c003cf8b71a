import type { ActiveResolution, CachedKey, ResolutionTarget } from '../cache/keyCache.js';

/** What envelope encryption needs from key resolution (the ledger's KeyResolver provides it). */
export interface KeySource {
  target(custodian: string, namespaces: readonly string[]): ResolutionTarget;
  peekActive(target: ResolutionTarget): ActiveResolution | null | undefined;
  resolveActive(target: ResolutionTarget): Promise<ActiveResolution | null>;
  resolveForDecrypt(keyId: string): Promise<CachedKey | null>;
  onKeyLeave(listener: (key: CachedKey) => void): () => void;
}

/**
 * A throwaway SoftHSM2 token for the pkcs11 provider's tests: a softhsm2.conf whose token directory
 * is a fresh temp dir, a token initialised in it, and SOFTHSM2_CONF pointing at that conf.
 *
 * SoftHSM reads SOFTHSM2_CONF once, at C_Initialize, and a process loads the module once: so a test
 * file makes one token (one conf) and all its tests share it; a test that needs a different token
 * (or a fresh module) runs in a child process. The PINs are test values; softhsm2-util only takes
 * them on its command line, which is acceptable for a throwaway token and never done by keyledger.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { type KeyScope, keyScope } from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import type { Pkcs11Config } from '../../src/providers/pkcs11/pkcs11Config.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';

export const SOFTHSM_MODULE = process.env.SOFTHSM2_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
const UTIL = process.env.SOFTHSM2_UTIL ?? 'softhsm2-util';
const TIMEOUT_MS = 60_000;

export interface SoftHsmToken {
  readonly dir: string;
  /** The conf file; SOFTHSM2_CONF is set to it while the token exists. */
  readonly conf: string;
  readonly module: string;
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
  /** Initialises another token in the same token directory (same conf, same process). */
  addToken(label: string, pin: string): void;
  /** Restores SOFTHSM2_CONF and deletes the token directory. */
  remove(): void;
}

/** Throws a clear error when SoftHSM2 is missing: a skipped HSM test proves nothing. */
export function requireSoftHsm(): void {
  if (!existsSync(SOFTHSM_MODULE)) {
    throw new Error(
      `SoftHSM2 module ${SOFTHSM_MODULE} not found; run scripts/ensure-system-deps.sh (apt-get install softhsm2)`,
    );
  }
  const probe = spawnSync(UTIL, ['--version'], { encoding: 'utf8', timeout: TIMEOUT_MS });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error('softhsm2-util not found; run scripts/ensure-system-deps.sh (apt-get install softhsm2)');
  }
}

/** Makes a token labelled `label` in a new temp dir and points SOFTHSM2_CONF at it. */
export function createSoftHsmToken(label = 'keyledger-test', pin = '1234-test-pin'): SoftHsmToken {
  requireSoftHsm();
  const dir = mkdtempSync(join(tmpdir(), 'keyledger-softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  const previous = process.env.SOFTHSM2_CONF;
  const soPin = '5678-test-so-pin';
  const init = (tokenLabel: string, tokenPin: string): void => {
    const result = spawnSync(
      UTIL,
      ['--init-token', '--free', '--label', tokenLabel, '--pin', tokenPin, '--so-pin', soPin],
      { encoding: 'utf8', timeout: TIMEOUT_MS, env: { ...process.env, SOFTHSM2_CONF: conf } },
    );
    if (result.error !== undefined || result.status !== 0) {
      throw new Error(`softhsm2-util --init-token failed: ${result.stderr || result.error?.message}`);
    }
  };
  try {
    init(label, pin);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    conf,
    module: SOFTHSM_MODULE,
    label,
    pin,
    soPin,
    addToken: init,
    remove: () => {
      if (previous === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = previous;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SoftHsmTestFileOptions {
  /** The file's main token and its PIN. */
  readonly label: string;
  readonly pin: string;
  /** The environment variable config() reads the main token's PIN from. */
  readonly pinEnv: string;
  /** The STK label config() names. */
  readonly stkLabel: string;
  /** More tokens in the same conf, label → PIN, made before the module is first loaded. */
  readonly tokens?: Readonly<Record<string, string>>;
  /** More environment variables set for the file (and deleted after it). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface SoftHsmTestFile {
  readonly hsm: SoftHsmToken;
  /** The pkcs11 provider's config for the main token (10 s call deadline), with overrides. */
  config(overrides?: Partial<Pkcs11Config>): Pkcs11Config;
  readonly scope: KeyScope;
  readonly binding: KeyScope & { readonly metadataHash: ReturnType<typeof metadataHashOf> };
  /** A fresh 32-byte DEK (0x5a bytes). */
  dek(): SecretBytes;
}

/**
 * Call at the top of a pkcs11 test file: one SoftHSM2 conf for the whole file (SoftHSM reads
 * SOFTHSM2_CONF when the module initialises) with the main token and any more tokens made at once,
 * the PIN variables set, and after() that unsets them and removes the token directory.
 */
export function useSoftHsmTestFile(options: SoftHsmTestFileOptions): SoftHsmTestFile {
  const hsm = createSoftHsmToken(options.label, options.pin);
  for (const [label, pin] of Object.entries(options.tokens ?? {})) hsm.addToken(label, pin);
  const env: Record<string, string> = { [options.pinEnv]: hsm.pin, ...options.env };
  for (const [name, value] of Object.entries(env)) process.env[name] = value;
  after(() => {
    for (const name of Object.keys(env)) delete process.env[name];
    hsm.remove();
  });
  const scope = keyScope(Buffer.from('hsm-custodian').toString('base64'), 'table1/cf1');
  return {
    hsm,
    config: (overrides = {}) => ({
      module: hsm.module,
      tokenLabel: hsm.label,
      pin: { env: options.pinEnv },
      stkLabel: options.stkLabel,
      callTimeoutMs: 10_000,
      ...overrides,
    }),
    scope,
    binding: { ...scope, metadataHash: metadataHashOf('pkcs11-test-dek') },
    dek: () => SecretBytes.copyOf(Buffer.alloc(32, 0x5a)),
  };
}

import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { KeyledgerError } from '../../domain/errors.js';

/** Deadline of one Cryptoki call when the config sets none. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/** Label of the system key objects when the config names none: `<stkLabel>.v<N>`. */
export const DEFAULT_STK_LABEL = 'keyledger-stk';

/**
 * The `pkcs11` section of keyledger.config.json. The PIN comes from a variable or a 0600 file,
 * never from the command line or the config itself. `stkLabel` is lowercase because system-key
 * metadata is compared case-insensitively (keyMetadata.ts).
 */
const pkcs11Schema = z
  .strictObject({
    module: z.string().min(1),
    tokenLabel: z.string().min(1).max(32),
    pinEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    pinFile: z.string().min(1).optional(),
    /** Deadline of one Cryptoki call, ms (default 10 s). */
    callTimeoutMs: z.number().int().min(1).max(600_000).optional(),
    stkLabel: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,47}$/, 'lowercase letters, digits, - and _ (at most 48)')
      .optional(),
  })
  .refine((c) => (c.pinEnv === undefined) !== (c.pinFile === undefined), {
    message: 'exactly one of pinEnv and pinFile',
  });

export type PinSource = { readonly env: string } | { readonly file: string };

export interface Pkcs11Config {
  /** Absolute path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  readonly module: string;
  readonly tokenLabel: string;
  readonly pin: PinSource;
  readonly stkLabel: string;
  /** Deadline of one Cryptoki call (a hung module fails the call with ERR_PKCS11_TIMEOUT). */
  readonly callTimeoutMs: number;
}

/** Parses the `pkcs11` section; relative paths are taken from `baseDir` (the config's folder). */
export function resolvePkcs11Config(raw: unknown, baseDir: string): Pkcs11Config {
  const parsed = pkcs11Schema.safeParse(raw);
  if (!parsed.success) {
    throw new KeyledgerError('ERR_INVALID_CONFIG', `pkcs11: ${z.prettifyError(parsed.error)}`, {
      property: 'pkcs11',
    });
  }
  const c = parsed.data;
  return {
    module: resolve(baseDir, c.module),
    tokenLabel: c.tokenLabel,
    pin: c.pinEnv !== undefined ? { env: c.pinEnv } : { file: resolve(baseDir, c.pinFile ?? '') },
    stkLabel: c.stkLabel ?? DEFAULT_STK_LABEL,
    callTimeoutMs: c.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
  };
}

/**
 * The PIN's bytes, read when logging in and not kept: the caller zeroes them once C_Login is done.
 * A file is read as bytes and never decoded here, so no JS string of it is made on this thread
 * (pkcs11js itself needs one inside its worker, pkcs11WorkerSource.ts). A variable's value is a
 * string already, in process.env, which keyledger cannot wipe. A PIN file others can read is refused.
 */
export function readPin(source: PinSource, tokenLabel: string): Buffer {
  const missing = (cause?: unknown): never => {
    throw new KeyledgerError(
      'ERR_PKCS11_PIN',
      'env' in source
        ? `the token PIN variable ${source.env} is not set`
        : `cannot read the token PIN file ${source.file}`,
      'env' in source
        ? { tokenLabel, pinEnv: source.env, reason: 'missing' }
        : { tokenLabel, pinFile: source.file, reason: 'missing' },
      { cause },
    );
  };
  if ('env' in source) {
    const value = process.env[source.env];
    return value === undefined || value === '' ? missing() : Buffer.from(value, 'utf8');
  }
  let mode: number;
  try {
    mode = statSync(source.file).mode & 0o777;
  } catch (error) {
    return missing(error);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    const octal = `0${mode.toString(8).padStart(3, '0')}`;
    throw new KeyledgerError(
      'ERR_INVALID_CONFIG',
      `token PIN file ${source.file} is accessible by group or others (mode ${octal}); run chmod 600 on it`,
      { file: source.file, mode: octal },
    );
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(source.file);
  } catch (error) {
    return missing(error);
  }
  // One trailing newline (\n or \r\n) is the editor's, not the PIN's; it is zeroed too.
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) end -= bytes[end - 2] === 0x0d ? 2 : 1;
  if (end === 0) {
    bytes.fill(0);
    return missing();
  }
  if (end === bytes.length) return bytes;
  const pin = Buffer.from(bytes.subarray(0, end));
  bytes.fill(0);
  return pin;
}

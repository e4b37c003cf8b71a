import { closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The ledger's files are private to its user: a missing folder is created 0700 and a missing
 * database file 0600 before sqlite opens it (sqlite would create it per umask, usually 0644, and
 * gives the -wal and -shm files the main file's mode). An existing folder or file is not changed,
 * since its mode may be an operator's choice (a folder shared by a service group); one that
 * group or others can access gets a warning naming it. POSIX modes only.
 */
export function prepareFiles(file: string): void {
  const folder = dirname(file);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  if (!existsSync(file)) {
    try {
      closeSync(openSync(file, 'wx', 0o600));
    } catch (error) {
      // Another process created it meanwhile: it is theirs to have made right; checked below.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  if (process.platform === 'win32') return;
  warnIfShared(folder, 0o022, 'writable', 'could replace the ledger file with another (an older copy)');
  for (const name of [file, `${file}-wal`, `${file}-shm`]) {
    warnIfShared(name, 0o077, 'accessible', 'can read the ledger (wrapped keys, history)');
  }
}

/** Warned once per path and process: a long-lived process opening the store again stays quiet. */
const warned = new Set<string>();

function warnIfShared(path: string, bits: number, what: string, consequence: string): void {
  let full: number;
  try {
    full = statSync(path).mode;
  } catch {
    return;
  }
  const mode = full & 0o777;
  // A sticky folder (/tmp) lets no one but the owner replace what is in it.
  const sticky = (full & 0o1000) !== 0;
  if ((mode & bits) === 0 || sticky || warned.has(path)) return;
  warned.add(path);
  const octal = `0${mode.toString(8).padStart(3, '0')}`;
  process.emitWarning(
    `${path} is ${what} by group or others (mode ${octal}): they ${consequence}; chmod ${bits === 0o022 ? '700' : '600'} it`,
    { code: 'KEYLEDGER_FILE_MODE', detail: `keyledger creates its folder 0700 and its files 0600` },
  );
}

/**
 * `npm start`: walks a fresh ledger on the embedded default store (sqlite, in a new temporary
 * directory) through init → enable → rotate → disable → history, printing each command as a user
 * would type it and what keyledger answers.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../src/cli/runCli.js';

const dir = mkdtempSync(join(tmpdir(), 'keyledger-demo-'));
const tenant = Buffer.from('tenant-1').toString('base64');
const scope = `${tenant}:orders`;

async function keyledger(args: string[], show = true): Promise<string> {
  let captured = '';
  if (show)
    process.stdout.write(`\n$ keyledger ${args.map((a) => (/[\s"'*]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
  const code = await runCli(args, {
    stdout: (text) => {
      captured += text;
      if (show) process.stdout.write(text);
    },
    stderr: (text) => process.stderr.write(text),
    cwd: dir,
    env: { ...process.env, KEYLEDGER_STORE: undefined },
    isTty: process.stdout.isTTY === true,
  });
  if (code !== 0) throw new Error(`keyledger ${args.join(' ')} exited with ${code}`);
  return captured;
}

console.log(`keyledger demo in ${dir} (embedded sqlite store, dev keystore made by init)`);
await keyledger(['init']);
await keyledger(['enable-key-management', '*', '--reason', 'global default key']);
await keyledger(['enable-key-management', scope, '--reason', 'tenant-1 onboarding']);
const [first] = JSON.parse(await keyledger(['show-key-status', scope, '--json'], false)) as {
  metadataHash: string;
}[];
await keyledger(['rotate-managed-key', scope, '--reason', 'scheduled rotation']);
await keyledger([
  'disable-managed-key',
  scope,
  first?.metadataHash ?? '',
  '--reason',
  'retire the first key',
]);
await keyledger(['history', scope]);
await keyledger(['show-key-status', scope]);
const created = JSON.parse(
  await keyledger(['token', 'create', '--principal', 'demo-admin', '--grant', 'admin:*', '--json'], false),
) as { token: string };
const bin = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
console.log(
  `\nThe ledger is in ${join(dir, '.keyledger')}. Go on from there with:\n  cd ${dir} && node ${bin} --help`,
);
console.log(
  [
    '',
    'Open the web console on this ledger:',
    `  cd ${dir} && node ${bin} serve --listen 127.0.0.1:8443`,
    '  then browse to http://127.0.0.1:8443/ and sign in with this API token (admin:*, made for the demo):',
    `  ${created.token}`,
  ].join('\n'),
);

#!/usr/bin/env node
// Bundles the web console (console/, Preact + TSX) into dist/console: one minified script and one
// stylesheet, named by a hash of their content (served as immutable), and the page naming them. No
// source map is written (the bundle is what ships). `npm run build` runs it, so `npm test`,
// `npm start` and `prepack` all produce it. It prints the script's gzipped size: the budget is 200 KB.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'dist', 'console');
const BUDGET = 200 * 1024;

const result = await build({
  entryPoints: [join(root, 'console', 'src', 'main.tsx'), join(root, 'console', 'src', 'style.css')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome120', 'firefox115'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  sourcemap: false,
  legalComments: 'none',
  write: false,
  outdir: 'out',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
const names = {};
for (const file of result.outputFiles) {
  const ext = file.path.endsWith('.css') ? 'css' : 'js';
  const hash = createHash('sha256').update(file.contents).digest('hex').slice(0, 12);
  const name = `console-${hash}.${ext}`;
  writeFileSync(join(out, 'assets', name), file.contents);
  names[ext] = { name, bytes: file.contents.length, gzipped: gzipSync(file.contents).length };
}
if (names.js === undefined || names.css === undefined)
  throw new Error('the console build made no script or stylesheet');
const page = readFileSync(join(root, 'console', 'page.html'), 'utf8')
  .replace('{{JS}}', names.js.name)
  .replace('{{CSS}}', names.css.name);
writeFileSync(join(out, 'index.html'), page);
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
process.stderr.write(
  `console: ${names.js.name} ${kb(names.js.bytes)} (${kb(names.js.gzipped)} gzipped), ${names.css.name} ${kb(names.css.bytes)} (${kb(names.css.gzipped)} gzipped)\n`,
);
if (names.js.gzipped > BUDGET) {
  throw new Error(`the console's script is ${kb(names.js.gzipped)} gzipped, over the ${kb(BUDGET)} budget`);
}

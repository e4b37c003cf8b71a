#!/usr/bin/env node
// Bundles the CLI (issue 18, "start fast"): tsc compiles src/ into ~300 files under dist/, and zod
// and rxjs are hundreds more, so a one-scope command spent most of its ~0.35 s resolving, reading
// and compiling modules. This rewrites dist/src/cli/main.js (the package's `bin`, after tsc) as
// one ESM bundle of what every command loads, with the code only some commands load (serve, init,
// remote operations) in chunks beside it, loaded by their dynamic import when used. Native and
// server-only packages stay external (resolved from node_modules at run time, as before).
//
// The chunks sit in dist/src/cli/ itself, named main-*.js: code that finds files relative to its
// own module (the console's assets, ../../console from dist/src/server) is at the same depth as
// when tsc compiled it. `npm run build` runs this after tsc; the library (dist/src/index.js) is
// not bundled.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { BUNDLE_EXTERNALS } from './bundleExternals.mjs';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'dist', 'src', 'cli');
const entry = join(dir, 'main.js');
const BANNER = '// keyledger CLI bundle (scripts/build-cli.mjs); the sources are dist/src/cli/*.js';

if (readFileSync(entry, 'utf8').includes(BANNER)) {
  // Run twice without tsc in between: the entry is already the bundle.
  console.log('cli: dist/src/cli/main.js is already bundled (run tsc first to rebuild it)');
  process.exit(0);
}

const result = await build({
  entryPoints: [entry],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: dir,
  entryNames: '[name]',
  chunkNames: 'main-[name]-[hash]',
  external: BUNDLE_EXTERNALS,
  sourcemap: 'linked',
  // As tsc's maps: they name the sources, they do not carry them (the package ships no src/).
  sourcesContent: false,
  legalComments: 'none',
  banner: { js: BANNER },
  write: false,
  allowOverwrite: true,
  logLevel: 'warning',
});

// Earlier builds' chunks (their names carry a content hash).
for (const name of readdirSync(dir)) {
  if (/^main-.+\.js(\.map)?$/.test(name)) rmSync(join(dir, name));
}
let bytes = 0;
for (const file of result.outputFiles) {
  writeFileSync(file.path, file.contents);
  if (file.path.endsWith('.js')) bytes += file.contents.length;
}
const chunks = result.outputFiles.filter((f) => f.path.endsWith('.js')).length - 1;
console.log(`cli: dist/src/cli/main.js bundled, ${chunks} chunks, ${(bytes / 1024).toFixed(0)} KB`);

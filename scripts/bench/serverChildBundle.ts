import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { BUNDLE_EXTERNALS } from '../bundleExternals.mjs';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Under dist/ (ignored by git) so that the external packages resolve from the repository's node_modules. */
const OUT_DIR = join(ROOT, 'dist', 'bench');

/**
 * serverChild.ts and everything it imports as one ESM bundle (dist/bench/serverChild.mjs), built the
 * way scripts/build-cli.mjs builds the shipped CLI that runs `keyledger serve`: esbuild, node20, the
 * same packages left external (native bindings and the server's framework packages, resolved from
 * node_modules at run time), no keep-names. Answers the bundle's path.
 */
export async function buildServerChild(entry: string): Promise<string> {
  mkdirSync(OUT_DIR, { recursive: true });
  const outfile = join(OUT_DIR, 'serverChild.mjs');
  await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outfile,
    external: BUNDLE_EXTERNALS,
    legalComments: 'none',
    logLevel: 'warning',
  });
  return outfile;
}

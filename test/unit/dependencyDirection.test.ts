import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The layers of src/ (docs/architecture.md), lowest first. A file may import from its own folder
 * and from folders of a lower layer; never from a higher one, nor from another folder of its own
 * layer (siblings stay independent, so no two folders can import each other). A new folder must
 * be placed here before it can be imported or import anything.
 */
export const LAYERS: Readonly<Record<string, number>> = {
  // Leaves: the pure domain (decisions, events, errors, identities) and the secret-bytes holder.
  domain: 0,
  secrets: 0,
  // Folds of domain events; ports and their adapters (event store, crypto).
  projections: 1,
  store: 1,
  crypto: 1,
  // Key providers (hand out system-key handles from crypto); the key cache (holds crypto's CachedKey).
  providers: 2,
  cache: 2,
  // The one write path: stream names, event factory, retry, decideAndAppend.
  journal: 3,
  // Tamper evidence and audit queries over the journal.
  audit: 4,
  // The key-management services and the Ledger that composes everything.
  ledger: 5,
  // The operation table every front end is generated from.
  operations: 6,
  // Opening a ledger as a config file says (config, store location, provider): for every local host.
  host: 7,
  // The HTTP API (server) and its remote client: siblings, they share only the operation table.
  server: 8,
  client: 8,
  // The keyledger command: runs operations locally, serves them (server), or sends them (client).
  cli: 9,
  // src/index.ts: the package's public exports.
  '(package)': 10,
};

export interface SourceFile {
  /** Repository-relative, with forward slashes: `src/ledger/ledger.ts`, `projections/keymeta.ts`. */
  readonly path: string;
  readonly source: string;
}

export interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly from: string;
  readonly to: string;
  readonly why: string;
}

/** The folder a repository path belongs to, or null outside src/ and projections/. */
export function folderOf(path: string): string | null {
  const parts = path.split('/');
  if (parts[0] === 'projections') return 'projections';
  if (parts[0] !== 'src') return null;
  return parts.length === 2 ? '(package)' : (parts[1] ?? null);
}

/**
 * Every module specifier a file names statically: `import … from`, `import type … from`,
 * `export … from`, a bare `import '…'`, and `import('…')` with a literal.
 */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  // Comments may quote import lines (as this file's do): drop them first.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const patterns = [
    /(?:^|[\n;])\s*(?:import|export)\s+(?:type\s+)?[^'";]*?\sfrom\s*['"]([^'"]+)['"]/g,
    /(?:^|[\n;])\s*import\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) if (match[1] !== undefined) found.push(match[1]);
  }
  return found;
}

/** Every import that runs against the layer table, naming file and specifier. */
export function checkDependencyDirection(
  files: readonly SourceFile[],
  layers: Readonly<Record<string, number>> = LAYERS,
): Violation[] {
  const violations: Violation[] = [];
  for (const file of files) {
    const from = folderOf(file.path);
    if (from === null) continue;
    for (const specifier of importsOf(file.source)) {
      if (!specifier.startsWith('.')) continue; // node: and npm packages
      const target = posix.normalize(posix.join(posix.dirname(file.path), specifier));
      const to = folderOf(target);
      const at = (why: string) =>
        violations.push({ file: file.path, specifier, from, to: to ?? target, why });
      if (to === null) {
        at('imports from outside src/ and projections/');
        continue;
      }
      if (to === from) continue;
      const fromLayer = layers[from];
      const toLayer = layers[to];
      if (fromLayer === undefined) at(`folder ${from} is not in the layer table`);
      else if (toLayer === undefined) at(`folder ${to} is not in the layer table`);
      else if (toLayer > fromLayer)
        at(`${from} (layer ${fromLayer}) imports ${to}, a layer above (${toLayer})`);
      else if (toLayer === fromLayer) at(`${from} imports ${to}, a sibling of the same layer (${toLayer})`);
    }
  }
  return violations;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function sourceFiles(dir: string): SourceFile[] {
  const files: SourceFile[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) {
      files.push({ path: path.split(sep).join('/'), source: readFileSync(join(ROOT, path), 'utf8') });
    }
  }
  return files;
}

function report(violations: readonly Violation[]): string {
  return violations.map((v) => `${v.file}: '${v.specifier}' — ${v.why}`).join('\n');
}

describe('dependency direction', () => {
  it('every import in src/ and projections/ runs down the layer table', () => {
    const files = [...sourceFiles('src'), ...sourceFiles('projections')];
    assert.ok(files.length > 50, `found only ${files.length} files under ${relative(process.cwd(), ROOT)}`);
    const folders = new Set(files.map((f) => folderOf(f.path)));
    for (const folder of folders) assert.ok(folder !== null && folder in LAYERS, `${folder} has no layer`);
    const violations = checkDependencyDirection(files);
    assert.deepEqual(violations, [], report(violations));
  });

  it('catches an import from a higher layer, a sibling, an unknown folder; allows the way down', () => {
    const files: SourceFile[] = [
      { path: 'src/domain/bad.ts', source: "import { Ledger } from '../ledger/ledger.js';\n" },
      {
        path: 'src/audit/bad.ts',
        source: "import type {\n  KeymetaAdmin,\n} from '../ledger/keymetaAdmin.js';\n",
      },
      { path: 'src/crypto/bad.ts', source: "export { KeyCache } from '../cache/keyCache.js';\n" },
      { path: 'src/store/bad.ts', source: "import '../crypto/envelope.js';\n" },
      { path: 'projections/bad.ts', source: "const m = await import('../src/journal/streamNames.js');\n" },
      { path: 'src/newFolder/bad.ts', source: "import { x } from '../domain/events.js';\n" },
      {
        path: 'src/ledger/good.ts',
        source: "import { a } from '../audit/asOf.js';\nimport { b } from './c.js';\n",
      },
      {
        path: 'src/cli/good.ts',
        source: "import { z } from 'zod';\nimport { d } from '../../projections/keymeta.js';\n",
      },
      { path: 'src/journal/good.ts', source: "// import { Ledger } from '../ledger/ledger.js';\n" },
      { path: 'src/index.ts', source: "export { Ledger } from './ledger/ledger.js';\n" },
    ];
    const violations = checkDependencyDirection(files);
    assert.deepEqual(
      violations.map((v) => `${v.file} -> ${v.to}`),
      [
        'src/domain/bad.ts -> ledger',
        'src/audit/bad.ts -> ledger',
        'src/crypto/bad.ts -> cache',
        'src/store/bad.ts -> crypto',
        'projections/bad.ts -> journal',
        'src/newFolder/bad.ts -> domain',
      ],
      report(violations),
    );
    assert.match(
      report(violations),
      /src\/audit\/bad\.ts: '\.\.\/ledger\/keymetaAdmin\.js' — audit \(layer 4\) imports ledger/,
    );
    assert.match(report(violations), /newFolder is not in the layer table/);
  });

  it('reads every static import form', () => {
    assert.deepEqual(
      importsOf(
        [
          "import { a } from './a.js';",
          "import type { B } from '../b.js';",
          'import {',
          '  c,',
          '  type D,',
          "} from '../c/d.js';",
          "export { e } from './e.js';",
          "export * from './f.js';",
          "export type * from './g.js';",
          "import './h.js';",
          "import * as i from 'node:fs';",
          "const j = await import('./j.js');",
        ].join('\n'),
      ),
      ['./a.js', '../b.js', '../c/d.js', './e.js', './f.js', './g.js', 'node:fs', './h.js', './j.js'],
    );
  });
});

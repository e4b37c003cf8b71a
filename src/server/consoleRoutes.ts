import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { KeyledgerError } from '../domain/errors.js';

/**
 * The web console's static files (built by scripts/build-console.mjs into dist/console): `/` and
 * `/assets/<file>`, unauthenticated like any static page; the console signs in against /v1 itself.
 * Every answer carries a strict Content-Security-Policy: scripts and styles from this origin only
 * (the bundle has no inline script or style), no framing, no plugins.
 */
export const CONSOLE_ROUTES: readonly string[] = ['/', '/assets/:file'];

export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/**
 * Where the built console is: beside the compiled server (dist/src/server → dist/console), or, when
 * the server runs from its TypeScript source (tsx), in the build output under dist/.
 */
export function defaultConsoleDir(): string | null {
  for (const relative of ['../../console/', '../../dist/console/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(join(dir, 'index.html')) && existsSync(join(dir, 'assets'))) return dir;
  }
  return null;
}

interface StaticFile {
  readonly body: Buffer;
  readonly type: string;
}

/** Reads the console's few small files once; the server answers them from memory. */
function loadConsole(dir: string): { index: StaticFile; assets: Map<string, StaticFile> } {
  const assets = new Map<string, StaticFile>();
  for (const name of readdirSync(join(dir, 'assets'))) {
    const type = TYPES[extname(name)];
    if (type !== undefined) assets.set(name, { body: readFileSync(join(dir, 'assets', name)), type });
  }
  return { index: { body: readFileSync(join(dir, 'index.html')), type: TYPES['.html'] ?? '' }, assets };
}

function send(reply: FastifyReply, file: StaticFile, cache: string): Buffer {
  reply.headers({ ...CONSOLE_HEADERS, 'content-type': file.type, 'cache-control': cache });
  return file.body;
}

/** Registers `/` and `/assets/:file`; with no built console (null), `/` says so as a 404 problem. */
export function registerConsoleRoutes(app: FastifyInstance, dir: string | null): void {
  const files = dir === null ? null : loadConsole(dir);
  const missing = (path: string) =>
    new KeyledgerError('ERR_NOT_FOUND', `no route GET ${path.slice(0, 200)}`, {
      method: 'GET',
      path: path.slice(0, 200),
    });
  app.get('/', async (_request, reply) => {
    if (files === null) throw missing('/ (the web console was not built: npm run build)');
    // The page names its assets; it is re-fetched on every load so a new build is picked up.
    return send(reply, files.index, 'no-cache');
  });
  app.get('/assets/:file', async (request, reply) => {
    const name = (request.params as { file: string }).file;
    const file = files?.assets.get(name);
    if (file === undefined) throw missing(`/assets/${name}`);
    // Asset names carry a content hash: a changed file is a new name.
    return send(reply, file, 'public, max-age=31536000, immutable');
  });
}

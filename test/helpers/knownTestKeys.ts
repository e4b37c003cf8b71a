/**
 * Keys a test process made in memory (ScriptedProvider's scope and system keys), noted for the
 * suite leak scan (suiteLeakScanHook.ts), which creates the registry only when it runs: without
 * it, noting is a no-op. The newest MAX_NOTED keys are kept.
 */

const REGISTRY = Symbol.for('keyledger.suiteLeakScan.knownKeys');
const MAX_NOTED = 2_000;

type Registry = Map<string, Buffer>;

/** Creates the registry (the hook does, at load). */
export function startNotingTestKeys(): Registry {
  const registry: Registry = new Map();
  (globalThis as Record<symbol, unknown>)[REGISTRY] = registry;
  return registry;
}

/** Notes a key the test process made, if a leak scan is running. */
export function noteTestKey(label: string, bytes: Uint8Array): void {
  const registry = (globalThis as Record<symbol, unknown>)[REGISTRY] as Registry | undefined;
  if (registry === undefined) return;
  if (registry.size >= MAX_NOTED) {
    const oldest = registry.keys().next().value;
    if (oldest !== undefined) registry.delete(oldest);
  }
  registry.set(`${label} #${registry.size}`, Buffer.from(bytes));
}

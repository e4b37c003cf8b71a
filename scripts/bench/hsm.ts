/**
 * HSM (issue 14): the pkcs11 provider on a SoftHSM2 token against the keystore provider's software
 * STK, in the same process:
 *
 * - wrap and unwrap per second through one SystemKeyHandle each (the token's does AES-GCM inside
 *   SoftHSM2 through pkcs11js; the keystore's in node:crypto with an HKDF subkey per call);
 * - a cold resolve (`resolveActive` of a scope whose key L1 no longer holds: the view answers and the
 *   DEK is unwrapped under its STK, in the token for pkcs11) against a warm one (an L1 hit), for both
 *   providers. Cold: COLD_SCOPES scopes cycled in order, more than L1 holds (1000 keys, 100
 *   resolutions), so every lookup misses. Warm: WARM_SCOPES scopes, all held;
 * - what L1 saves at the churn bench's Zipf hit rate (CHURN_HIT_RATE, BENCHMARKS.md (c)): the mean
 *   lookup cost h·warm + (1−h)·cold against every lookup cold, computed from the figures above.
 *
 * Method as the other benches: ROUNDS rounds of ROUND_MS per loop, order alternated; medians of the
 * per-round rates, ratios as medians of per-round ratios.
 */
import { randomBytes } from 'node:crypto';
import type { ResolutionTarget } from '../../src/crypto/keySource.js';
import type { SystemKeyHandle } from '../../src/crypto/systemKeyHandle.js';
import { keyScope } from '../../src/domain/identities.js';
import { metadataHashOf } from '../../src/domain/keyDigests.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { GeneratedKeyProvider } from '../../src/providers/generated/generatedKeyProvider.js';
import type { ManagedKeyProvider } from '../../src/providers/managedKeyProvider.js';
import { Pkcs11KeyProvider } from '../../src/providers/pkcs11/pkcs11KeyProvider.js';
import { SecretBytes } from '../../src/secrets/secretBytes.js';
import { MemoryEventStore } from '../../src/store/memoryEventStore.js';
import { createSoftHsmToken } from '../../test/helpers/softHsm.js';
import {
  type BenchResult,
  custodian,
  fmtOps,
  machineInfo,
  main,
  makeKeystore,
  median,
  type Row,
} from './common.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 200);
const COLD_SCOPES = 1500;
const WARM_SCOPES = 50;
/** BENCHMARKS.md (c): L1 hit rate of 1M Zipf(1.0) lookups over 100k scopes, default L1. */
const CHURN_HIT_RATE = 0.2894;
const PIN_ENV = 'KEYLEDGER_BENCH_HSM_PIN';

type Loop = () => void | Promise<void>;

/** Per-round ops/s of each loop, ROUNDS rounds of ROUND_MS each, order reversed every other round. */
async function measure(loops: Readonly<Record<string, Loop>>): Promise<Record<string, number[]>> {
  const names = Object.keys(loops);
  const rates: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const name of names) {
    const loop = loops[name] as Loop;
    for (let i = 0; i < 50; i++) await loop(); // warm-up
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const loop = loops[name] as Loop;
      const start = process.hrtime.bigint();
      const end = start + BigInt(ROUND_MS) * 1_000_000n;
      let n = 0;
      let now = start;
      while (now < end) {
        for (let i = 0; i < 16; i++) await loop();
        n += 16;
        now = process.hrtime.bigint();
      }
      rates[name]?.push(n / (Number(now - start) / 1e9));
    }
  }
  return rates;
}

function ratio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((x, i) => x / (b[i] ?? Number.NaN)));
}

function handleLoops(label: string, handle: SystemKeyHandle): Record<string, Loop> {
  const binding = { ...keyScope(custodian(1), 'orders'), metadataHash: metadataHashOf('bench-dek') };
  const dek = SecretBytes.adopt(randomBytes(32));
  const wrapped = handle.wrap(dek, binding);
  return {
    [`${label} wrap`]: () => {
      handle.wrap(dek, binding);
    },
    [`${label} unwrap`]: () => {
      handle.unwrap(wrapped, binding, null).zero();
    },
  };
}

interface ResolveSetup {
  readonly ledger: Ledger;
  readonly cold: readonly ResolutionTarget[];
  readonly warm: readonly ResolutionTarget[];
}

async function resolveSetup(provider: ManagedKeyProvider): Promise<ResolveSetup> {
  const ledger = await Ledger.open({ store: new MemoryEventStore(), provider });
  await ledger.initialise();
  const cold: ResolutionTarget[] = [];
  for (let i = 0; i < COLD_SCOPES; i++) {
    await ledger.admin.enableKeyManagement(custodian(i), 'orders');
    cold.push(ledger.resolver.target(custodian(i), ['orders']));
  }
  return { ledger, cold, warm: cold.slice(0, WARM_SCOPES) };
}

function resolveLoops(label: string, setup: ResolveSetup): Record<string, Loop> {
  let c = 0;
  let w = 0;
  return {
    [`${label} cold resolve`]: async () => {
      await setup.ledger.resolver.resolveActive(setup.cold[c++ % setup.cold.length] as ResolutionTarget);
    },
    [`${label} warm resolve`]: async () => {
      await setup.ledger.resolver.resolveActive(setup.warm[w++ % setup.warm.length] as ResolutionTarget);
    },
  };
}

async function run(): Promise<BenchResult> {
  const started = process.hrtime.bigint();
  const hsm = createSoftHsmToken('kl-bench', '4444-bench-pin');
  process.env[PIN_ENV] = hsm.pin;
  const keystore = makeKeystore('hsm');
  const config = {
    module: hsm.module,
    tokenLabel: hsm.label,
    pin: { env: PIN_ENV },
    stkLabel: 'bench-stk',
    callTimeoutMs: 10_000,
  };
  const tokenKeys = new Pkcs11KeyProvider(config);
  const softwareProvider = keystore.provider();
  const hsmProvider = new GeneratedKeyProvider({ systemKeys: new Pkcs11KeyProvider(config) });
  const opened: Ledger[] = [];
  try {
    const tokenStk = await tokenKeys.createSystemKey();
    const softwareStk = await softwareProvider.getSystemKey();
    const wraps = await measure({
      ...handleLoops('pkcs11', tokenStk),
      ...handleLoops('keystore', softwareStk),
    });

    const hsmSetup = await resolveSetup(hsmProvider);
    const swSetup = await resolveSetup(softwareProvider);
    opened.push(hsmSetup.ledger, swSetup.ledger);
    const resolves = await measure({
      ...resolveLoops('pkcs11', hsmSetup),
      ...resolveLoops('keystore', swSetup),
    });
    const metrics = hsmSetup.ledger.resolver.metrics();

    const rate = (name: string): number => median(wraps[name] ?? resolves[name] ?? []);
    const row = (metric: string, name: string): Row => ({ metric, value: fmtOps(rate(name)) });
    const rows: Row[] = [
      row('wrap, SoftHSM2 (C_EncryptInit + C_Encrypt in one worker message, AES-GCM)', 'pkcs11 wrap'),
      row('wrap, keystore STK in process (HKDF + AES-GCM)', 'keystore wrap'),
      {
        metric: 'wrap: keystore ÷ SoftHSM2',
        value: `${ratio(wraps['keystore wrap'] ?? [], wraps['pkcs11 wrap'] ?? []).toFixed(1)}×`,
      },
      row('unwrap, SoftHSM2 (C_DecryptInit + C_Decrypt in one worker message)', 'pkcs11 unwrap'),
      row('unwrap, keystore STK in process', 'keystore unwrap'),
      {
        metric: 'unwrap: keystore ÷ SoftHSM2',
        value: `${ratio(wraps['keystore unwrap'] ?? [], wraps['pkcs11 unwrap'] ?? []).toFixed(1)}×`,
      },
    ];
    const cost = (name: string) => 1e6 / rate(name); // µs per lookup
    for (const label of ['pkcs11', 'keystore']) {
      const cold = cost(`${label} cold resolve`);
      const warm = cost(`${label} warm resolve`);
      const mixed = CHURN_HIT_RATE * warm + (1 - CHURN_HIT_RATE) * cold;
      rows.push(
        row(`${label}: cold resolve (L1 miss → view → unwrap)`, `${label} cold resolve`),
        row(`${label}: warm resolve (L1 hit)`, `${label} warm resolve`),
        {
          metric: `${label}: mean lookup at the churn hit rate ${(CHURN_HIT_RATE * 100).toFixed(2)} %, vs all cold`,
          value: `${mixed.toFixed(1)} µs vs ${cold.toFixed(1)} µs (L1 saves ${((1 - mixed / cold) * 100).toFixed(0)} %)`,
        },
      );
    }
    const notes = [
      `L1 during the resolve rounds: ${metrics.l1Keys.size}/${metrics.l1Keys.max} keys, ${metrics.l1Resolutions.size}/${metrics.l1Resolutions.max} resolutions`,
      'SoftHSM2 runs in process: a call costs the PKCS#11 dispatch and its own crypto, no round trip. A network HSM adds 0.5–5 ms per call: a cold resolve then costs about that much, a warm one nothing.',
    ];
    return {
      bench: 'hsm',
      machine: machineInfo(),
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
      rows,
      notes,
    };
  } finally {
    for (const ledger of opened) await ledger.close();
    await hsmProvider.close();
    await softwareProvider.close();
    await tokenKeys.close();
    keystore.remove();
    delete process.env[PIN_ENV];
    hsm.remove();
  }
}

await main(import.meta.url, 'hsm', run);

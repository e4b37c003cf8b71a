import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, providerFor } from '../../src/host/config.js';
import { cliHarness, ledgerDb, requireBuiltCli, tempDirs } from '../helpers/cliHarness.js';
import { type Answer, httpsCall } from '../helpers/httpsCall.js';
import { checkLedgerInvariants } from '../helpers/ledgerInvariants.js';
import { type ServeProcess, startServeProcess, writeServeConfig } from '../helpers/serveProcess.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/testCertificates.js';
import { makeJwtIssuer } from '../helpers/testJwt.js';
import { RELIABILITY_FULL, scaled } from './reliabilityScale.js';

/**
 * Issue 15, part 1, the service: a `keyledger serve` child (the built CLI, HTTPS on 127.0.0.1) on a
 * sqlite file, CLIENTS clients running encrypt, decrypt, rotate, disable and enable keys, and the
 * server SIGKILLed at a random moment, KILLS times. Clients may see errors (a reset connection, a
 * refused one), never a wrong answer: every decrypt that succeeds returns the plaintext that was
 * encrypted. After each kill the crash-safety checks run on the file (ledgerInvariants.ts) with every
 * write the server answered 200 to; the restarted server then serves that same state (its
 * list-scopes equals the checker's view) and decrypts what was encrypted before the kill.
 */
const { ok, env: ENV } = cliHarness();
const KILLS = scaled(3, 30);
const CLIENTS = 8;
const T1 = Buffer.from('tenant-1').toString('base64');
const NAMESPACES = ['n0', 'n1', 'n2', 'n3'];

interface Sealed {
  readonly plaintext: Buffer;
  readonly ciphertext: string;
  readonly keyId: string;
  readonly namespace: string;
}

interface Tally {
  requests: number;
  ok: Record<string, number>;
  refused: Record<string, number>;
  connectionErrors: number;
  wrongAnswers: number;
  serverErrors: string[];
}

const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

describe('reliability: keyledger serve SIGKILLed under load', () => {
  const dirs = tempDirs('kl-serve-kill-');
  const running: ServeProcess[] = [];
  let dir: string;
  let certs: TestCertificates;
  let ca: Buffer;
  let token: string;

  before(async () => {
    requireBuiltCli();
    dir = dirs.make();
    ok(dir, ['init']);
    certs = makeTestCertificates();
    ca = certs.pem(certs.caCert);
    const issuer = await makeJwtIssuer();
    token = await issuer.sign('load', ['admin:*']);
    writeServeConfig(dir, certs, issuer.jwks, {
      rotateDueKeys: 'off',
      // The clients are the load; the per-principal rate limit would turn it into 429s.
      limits: { shutdownMs: 2000, rateLimit: { max: 1_000_000, timeWindowMs: 60_000 } },
    });
  });
  after(async () => {
    for (const served of running) {
      if (served.child.exitCode === null && served.child.signalCode === null) await served.stop();
    }
    certs?.remove();
    dirs.removeAll();
  });

  const post = (url: string, path: string, json: unknown): Promise<Answer> =>
    httpsCall(url, 'POST', path, { ca, token, json });

  it(`${KILLS} SIGKILLs of serve under ${CLIENTS} clients: errors, never wrong answers, nothing lost`, {
    timeout: RELIABILITY_FULL ? 3_600_000 : 110_000,
  }, async () => {
    const sealed: Sealed[] = [];
    const acknowledged: string[] = [];
    const tally: Tally = {
      requests: 0,
      ok: {},
      refused: {},
      connectionErrors: 0,
      wrongAnswers: 0,
      serverErrors: [],
    };
    /** Key ids per namespace as the last answer listed them, with their states. */
    const keys = new Map<string, Map<string, string>>();
    let checkedAfterRestart = 0;
    let lastView: unknown = null;

    for (let kill = 0; kill < KILLS; kill++) {
      const served = await startServeProcess(dir, [], ENV);
      running.push(served);
      if (kill === 0) {
        // Through the server: four CLI processes would cost seconds of start-up.
        for (const ns of NAMESPACES) {
          const enabled = await post(served.url, '/v1/enable-key-management', { scope: `${T1}:${ns}` });
          assert.equal(enabled.status, 200, enabled.text);
          acknowledged.push(String(enabled.json.position));
        }
      }
      if (lastView !== null) {
        // The restarted server serves what the checker saw in the file.
        const listed = await post(served.url, '/v1/list-scopes', {});
        assert.equal(listed.status, 200, listed.text);
        assert.deepEqual(keyStates(listed.json), keyStatesOfView(lastView), `restart ${kill}: another state`);
        const disabled = disabledKeys(lastView);
        for (const s of sealed.filter((x) => !disabled.has(x.keyId)).slice(-16)) {
          const answer = await post(served.url, '/v1/decrypt', { data: s.ciphertext });
          assert.equal(answer.status, 200, `restart ${kill}: ${answer.text}`);
          assert.ok(Buffer.from(answer.json.data, 'base64').equals(s.plaintext), 'a wrong plaintext');
          checkedAfterRestart += 1;
        }
      }
      let stop = false;
      const client = async (i: number) => {
        while (!stop) await step(served.url, NAMESPACES[i % NAMESPACES.length] ?? 'n0');
      };
      const step = async (url: string, ns: string) => {
        const scope = `${T1}:${ns}`;
        const pick = Math.random();
        let op: string;
        let body: Record<string, unknown>;
        let plaintext: Buffer | null = null;
        let decrypting: Sealed | null = null;
        const known = [...(keys.get(ns) ?? new Map<string, string>())];
        const inactive = known.filter(([, state]) => state === 'INACTIVE');
        const disabled = known.filter(([, state]) => state === 'DISABLED');
        if (pick < 0.4 || sealed.length === 0) {
          op = 'encrypt';
          plaintext = randomBytes(1 + Math.floor(Math.random() * 300));
          body = { custodian: T1, namespace: [ns], data: plaintext.toString('base64') };
        } else if (pick < 0.75) {
          op = 'decrypt';
          decrypting = sealed[Math.floor(Math.random() * sealed.length)] ?? null;
          body = { data: decrypting?.ciphertext };
        } else if (pick < 0.87 || (inactive.length === 0 && disabled.length === 0)) {
          op = 'rotate-managed-key';
          body = { scope };
        } else if (inactive.length > 0 && (disabled.length === 0 || Math.random() < 0.5)) {
          op = 'disable-managed-key';
          body = { scope, key: inactive[Math.floor(Math.random() * inactive.length)]?.[0] };
        } else {
          op = 'enable-managed-key';
          body = { scope, key: disabled[Math.floor(Math.random() * disabled.length)]?.[0] };
        }
        tally.requests += 1;
        let answer: Answer;
        try {
          answer = await post(url, `/v1/${op}`, body);
        } catch {
          // The server died under this request (reset, refused): an error, as promised.
          tally.connectionErrors += 1;
          await sleep(5);
          return;
        }
        if (answer.status >= 500) {
          tally.serverErrors.push(`${op}: ${answer.status} ${answer.text.slice(0, 200)}`);
          return;
        }
        if (answer.status !== 200) {
          bump(tally.refused, `${op} ${answer.json?.code ?? answer.status}`);
          return;
        }
        bump(tally.ok, op);
        if (op === 'encrypt' && plaintext !== null) {
          sealed.push({ plaintext, ciphertext: answer.json.data, keyId: answer.json.keyId, namespace: ns });
        } else if (op === 'decrypt' && decrypting !== null) {
          if (!Buffer.from(answer.json.data, 'base64').equals(decrypting.plaintext)) tally.wrongAnswers += 1;
        } else {
          if (answer.json.position !== null) acknowledged.push(String(answer.json.position));
          const listed: { keyId: string; state: string }[] = answer.json.keys ?? [answer.json.key];
          const states = keys.get(ns) ?? new Map<string, string>();
          for (const k of listed) states.set(k.keyId, k.state);
          keys.set(ns, states);
        }
      };
      const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
      await sleep(300 + Math.floor(Math.random() * scaled(1200, 2000)));
      served.child.kill('SIGKILL');
      await once(served);
      stop = true;
      await Promise.all(clients);
      assert.equal(served.child.signalCode, 'SIGKILL', `serve ended by itself: ${served.stderr()}`);
      const report = await checkLedgerInvariants(
        ledgerDb(dir),
        () => providerFor(loadConfig(join(dir, 'keyledger.config.json'))),
        acknowledged,
        `after kill ${kill + 1}`,
      );
      lastView = report.view;
      // Key states as the file holds them: a write that was cut off may have landed or not.
      keys.clear();
      for (const [ns, keyId, state] of keyStatesOfView(lastView)) {
        const states = keys.get(ns) ?? new Map<string, string>();
        states.set(keyId, state);
        keys.set(ns, states);
      }
    }
    console.log(
      `serve killed under load: ${KILLS} kills, ${tally.requests} requests, ok ${JSON.stringify(tally.ok)}, refused ${JSON.stringify(tally.refused)}, ${tally.connectionErrors} connection errors, ${tally.serverErrors.length} 5xx, ${tally.wrongAnswers} wrong answers, ${acknowledged.length} acknowledged writes, ${checkedAfterRestart} decrypts after restarts`,
    );
    assert.equal(tally.wrongAnswers, 0, 'a decrypt returned another plaintext');
    assert.deepEqual(tally.serverErrors, [], 'a 5xx answer');
    assert.ok(
      acknowledged.length > 0 && sealed.length > 0,
      'nothing was acknowledged: the test proved nothing',
    );
  });
});

function once(served: ServeProcess): Promise<void> {
  if (served.child.exitCode !== null || served.child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => served.child.once('exit', () => done()));
}

type KeyState = [namespace: string, keyId: string, state: string];

const byKey = (a: KeyState, b: KeyState) => `${a[0]}/${a[1]}`.localeCompare(`${b[0]}/${b[1]}`);

/** (namespace, keyId, state) of every key in a list-scopes answer. */
function keyStates(scopes: { namespace: string; keys: { keyId: string; state: string }[] }[]): KeyState[] {
  return scopes.flatMap((s) => s.keys.map((k): KeyState => [s.namespace, k.keyId, k.state])).sort(byKey);
}

function keyStatesOfView(view: unknown): KeyState[] {
  return keyStates((view as { scopes: Parameters<typeof keyStates>[0] }).scopes);
}

function disabledKeys(view: unknown): Set<string> {
  return new Set(
    keyStatesOfView(view)
      .filter(([, , s]) => s === 'DISABLED')
      .map(([, id]) => id),
  );
}

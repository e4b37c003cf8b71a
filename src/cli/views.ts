import { KeyledgerError } from '../domain/errors.js';
import { formatScope } from '../domain/identities.js';
import { KEY_STATES } from '../domain/keyState.js';
import type { KeyInfo } from '../ledger/keyInfo.js';
import type { Ledger } from '../ledger/ledger.js';
import { parseScopeArg } from '../operations/identityArgs.js';
import type { OperationName, OutputOf } from '../operations/operations.js';
import { table } from './output.js';
import { keyAgeTable, POLICY_VIEWS, rotationNote } from './policyViews.js';
import { TOKEN_VIEWS } from './tokenViews.js';

/**
 * How the CLI shows each operation's result: `text` for a person (tables, one-line summaries); `json`
 * when `--json` prints something else than the result itself (the shapes the CLI printed before the
 * operation table, kept); `failure` when a result is a failure to exit with (verify); `warning` a line
 * for stderr. Every operation has a view: the type below fails to compile when one is missing.
 */
export interface View<O> {
  text(out: O, input: Readonly<Record<string, unknown>>): string;
  json?(out: O): unknown;
  failure?(out: O): KeyledgerError | null;
  warning?(out: O): string | null;
  /** After a failure, a hint for stderr from the ledger's state (rewrap: which campaign to resume). */
  afterFailure?(ledger: Ledger): Promise<string | null>;
}

type Views = { readonly [N in OperationName]: View<OutputOf<N>> };

const KEY_HEADERS = ['SCOPE', 'STATE', 'METADATA HASH', 'CHECKSUM', 'REFRESHED'];

export function keyTable(keys: readonly KeyInfo[]): string {
  return table(
    KEY_HEADERS,
    keys.map((k) => [`${k.custodian}:${k.namespace}`, k.state, k.metadataHash, k.checksum, k.refreshedAt]),
  );
}

/** The scope a command was given, in its canonical form. */
function scopeText(input: Readonly<Record<string, unknown>>): string {
  return formatScope(parseScopeArg(String(input.scope)));
}

/** show-key-status: one line per key scheduled for destruction or destroyed, below the table. */
function destructionNotes(keys: readonly KeyInfo[]): string {
  return keys
    .map((k) =>
      k.destructionDueAt !== null
        ? `${k.metadataHash}: destruction scheduled, due at ${k.destructionDueAt}\n`
        : k.state === 'DESTROYED'
          ? `${k.metadataHash}: DESTROYED at ${k.updatedAt}, material deleted (see destruction-receipts)\n`
          : '',
    )
    .join('');
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

type Report = OutputOf<'verify'>;

function reportText(r: Report): string {
  const lines: string[] = [];
  const macs = r.macs === 'skipped' ? 'MACs not checked' : `${count(r.macsVerified, 'MAC')} verified`;
  const unavailable = r.macsUnavailable > 0 ? `, ${r.macsUnavailable} under retired system keys` : '';
  lines.push(
    `${r.ok ? 'verified' : 'TAMPERED'}: ${count(r.eventsChecked, 'event')} in ${count(r.streams, 'stream')}, ${count(r.checkpointsChecked, 'checkpoint')} (${macs}${unavailable})`,
  );
  if (r.coveredPosition === null) lines.push('no checkpoint covers the ledger yet: run keyledger checkpoint');
  else lines.push(`covered by checkpoints up to position ${r.coveredPosition}`);
  if (r.uncoveredEvents > 0) {
    lines.push(
      `${count(r.uncoveredEvents, 'event')} after the newest checkpoint: chained, not yet covered by one`,
    );
  }
  if (r.lastCheckpoint !== null) {
    lines.push(`newest checkpoint: --anchor ${r.lastCheckpoint.revision}:${r.lastCheckpoint.hash}`);
  }
  if (r.legacyEvents > 0)
    lines.push(`${r.legacyEvents} events predate the hash chain (covered by checkpoints only)`);
  if (r.destroyedStreams > 0)
    lines.push(`${r.destroyedStreams} material streams deleted by key destruction (receipts found)`);
  for (const problem of r.problems.slice(0, 10)) {
    const where = `${problem.stream || 'the file'}${problem.revision === null ? '' : `@${problem.revision}`}`;
    lines.push(`  ${problem.kind} at position ${problem.position} (${where}): ${problem.message}`);
  }
  if (r.problemCount > 10)
    lines.push(`  … ${r.problemCount - 10} more (--json lists the first ${r.problems.length})`);
  return `${lines.join('\n')}\n`;
}

const verifyView: View<Report> = {
  text: reportText,
  failure(r) {
    const first = r.firstProblem;
    if (first === null) return null;
    return new KeyledgerError(
      'ERR_LEDGER_TAMPERED',
      `verification failed at position ${first.position} (${first.kind}, ${first.stream || 'the file'}${first.revision === null ? '' : `@${first.revision}`})`,
      { position: first.position, kind: first.kind, stream: first.stream },
    );
  },
  warning: (r) =>
    r.macs === 'skipped'
      ? 'warning: checkpoint MACs were not checked (no provider configured): a writer could have rebuilt this file'
      : null,
};

const RECEIPT_HEADERS = [
  'SCOPE',
  'METADATA HASH',
  'WAS',
  'MATERIAL',
  'MATERIAL SHA-256',
  'DESTROYED',
  'ACTOR',
];

function receiptTable(receipts: OutputOf<'destruction-receipts'>): string {
  return table(
    RECEIPT_HEADERS,
    receipts.map((r) => [
      `${r.custodian}:${r.namespace}`,
      r.metadataHash,
      r.previousState,
      count(r.materialEvents, 'event'),
      r.materialHash,
      r.destroyedAt,
      r.actor,
    ]),
  );
}

function rewrapText(r: OutputOf<'rewrap-start'>): string {
  const stk = r.systemKey === null ? '' : `system key #${r.systemKey.sequence} (${r.systemKey.identity})`;
  const c = r.campaign;
  if (r.status === 'up-to-date' || c === null) return `every key is already under ${stk}; nothing to do\n`;
  if (r.status === 'paused') {
    return `rewrap campaign ${c.campaignId} paused after ${c.done} of ${c.keys} keys; resume with keyledger rewrap --resume ${c.campaignId}\n`;
  }
  const lines = [
    `rewrap campaign ${c.campaignId} finished: ${c.rewrapped} keys re-wrapped, ${c.skipped} skipped, under ${stk}`,
  ];
  if (r.remaining > 0) {
    lines.push(
      `${r.remaining} keys were written under an older system key meanwhile; run keyledger rewrap again`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const rewrapView: View<OutputOf<'rewrap-start'>> = {
  text: rewrapText,
  async afterFailure(ledger) {
    const open = (await ledger.rewrap.status()).open;
    return open === null
      ? null
      : `rewrap campaign ${open.campaignId} stopped after ${open.done} of ${open.keys} keys; resume with keyledger rewrap --resume ${open.campaignId}`;
  },
};

function historyText(entries: OutputOf<'history'>): string {
  return table(
    ['POSITION', 'TIME', 'EVENT', 'CHANGE', 'ACTOR', 'REASON'],
    entries.map((e) => [
      e.position,
      e.occurredAt,
      e.type,
      [
        ...(e.marker ? [`marker ${e.marker.from ?? '-'} → ${e.marker.to ?? '-'}`] : []),
        ...e.keys.map((k) => `${k.metadataHash.slice(0, 10)}… ${k.from ?? 'new'} → ${k.to}`),
        ...(e.material && e.subject
          ? [`${e.subject.metadataHash.slice(0, 10)}… material under system key ${e.material.stkIdentity}`]
          : []),
        ...(e.keys.length === 0 && e.material === null && e.subject
          ? [`${e.subject.metadataHash.slice(0, 10)}… unchanged`]
          : []),
      ].join('; '),
      e.actor,
      e.reason ?? '',
    ]),
  );
}

function metricsText(metrics: OutputOf<'metrics'>): string {
  return table(
    ['DATE', ...KEY_STATES, 'EVENTS', 'TRANSITIONS'],
    metrics.days.map((d) => [
      d.date,
      ...KEY_STATES.map((s) => String(d.keys[s])),
      String(d.events),
      Object.entries(d.transitions)
        .map(([t, n]) => `${t} ${n}`)
        .join(', '),
    ]),
  );
}

export const VIEWS: Views = {
  init: {
    text: (r) =>
      [
        `config      ${r.config}${r.configCreated ? ' (created)' : ' (existing)'}\n`,
        r.keystore === null ? '' : `keystore    ${r.keystore} (PKCS#12, password in keystore.pass)\n`,
        r.token === null ? '' : `token       ${r.token} (PKCS#11; the system key stays in the token)\n`,
        `store       ${r.store}\n`,
        `system key  #${r.systemKey.sequence} identity ${r.systemKey.identity}\n`,
      ].join(''),
  },
  'enable-key-management': {
    text: (r, input) =>
      'results' in r
        ? `${r.results
            .map(
              (e) =>
                `${e.scope}: marker ${e.marker ?? '-'}${e.position === null ? ' (already enabled)' : ''}\n`,
            )
            .join('')}${r.enabled} scopes\n`
        : `${scopeText(input)}: marker ${r.marker ?? '-'}${r.position === null ? ' (already enabled)' : ''}\n${r.key ? keyTable([r.key]) : ''}`,
  },
  'disable-key-management': {
    text: (r, input) =>
      `${scopeText(input)}: key management disabled${r.position === null ? ' (already)' : ''}\n${keyTable(r.keys)}`,
  },
  'disable-managed-key': { text: (r) => keyTable([r.key]), json: (r) => [r.key] },
  'enable-managed-key': { text: (r) => keyTable([r.key]), json: (r) => [r.key] },
  'rotate-managed-key': {
    text: (r, input) =>
      r.rotated
        ? keyTable(r.keys)
        : `${scopeText(input)}: the provider has no new ACTIVE key; nothing changed\n`,
    json: (r) => (r.rotated ? { position: r.position, key: r.key } : null),
  },
  'refresh-managed-keys': {
    text: (r, input) =>
      `${r.skipped ? `${scopeText(input)}: key management is disabled; nothing refreshed\n` : ''}${keyTable(r.keys)}`,
    json: (r) => r.keys,
  },
  'set-managed-key': { text: (r) => keyTable(r.keys), json: (r) => r.keys },
  'import-managed-key': {
    text: (r) =>
      `${keyTable([r.key])}${r.position === null ? 'already imported in that state: nothing written\n' : ''}`,
  },
  'rotate-stk': {
    text: (r) =>
      r.changed
        ? `system key rotated: #${r.sequence} identity ${r.identity}\n`
        : `system key unchanged (#${r.sequence})\n`,
  },
  'eject-cache-entry': { text: (r) => `cache eviction recorded at position ${r.position}\n` },
  'clear-cache': { text: (r) => `cache clear recorded at position ${r.position}\n` },
  'show-key-status': {
    text: (r) =>
      `${r.custodian}:${r.namespace}: marker ${r.marker ?? '-'}\n${keyAgeTable(r.keys)}${destructionNotes(r.keys)}${rotationNote(r.rotation)}`,
    json: (r) => r.keys,
  },
  'scope-as-of': {
    text: (r) => {
      const byPosition = /^\d+$/.test(r.at);
      const target = byPosition ? `position ${r.at}` : r.at;
      const upTo = byPosition ? '' : ` (events up to position ${r.position})`;
      return `${r.custodian}:${r.namespace} as of ${target}${upTo}: marker ${r.marker ?? '-'}\n${keyTable(r.keys)}`;
    },
  },
  'list-scopes': {
    text: (scopes) =>
      table(
        ['SCOPE', 'MARKER', 'KEYS', 'ACTIVE KEY'],
        scopes.map((s) => [
          `${s.custodian}:${s.namespace}`,
          s.marker ?? '-',
          String(s.keys.length),
          s.keys.find((k) => k.state === 'ACTIVE')?.metadataHash ?? '-',
        ]),
      ),
  },
  resolve: {
    text: (r, input) =>
      table(
        ['CANDIDATE', 'SCOPE', 'METADATA HASH', 'KEY ID', 'STATE', 'CHECKSUM'],
        [
          [
            `${r.candidate + 1} of ${Array.isArray(input.namespace) ? input.namespace.length : 1}`,
            `${r.custodian}:${r.namespace}`,
            r.metadataHash,
            r.keyId,
            r.state,
            r.checksum,
          ],
        ],
      ),
  },
  history: { text: historyText },
  metrics: { text: metricsText },
  watch: { text: (event) => `${JSON.stringify(event)}\n` },
  encrypt: { text: () => '' },
  decrypt: { text: () => '' },
  reencrypt: { text: () => '' },
  'reencrypt-status': {
    text: (campaigns) =>
      table(
        ['CAMPAIGN', 'SCOPE', 'LEGACY KEY', 'PROGRESS', 'FAILED', 'RESUME AFTER', 'STATE'],
        campaigns.map((c) => [
          c.campaign,
          c.scope,
          c.metadataHash,
          `${c.reencrypted + c.skipped + c.failed}${c.total === null ? '' : `/${c.total}`}`,
          c.failed === 0
            ? '0'
            : `${c.failed} (${c.failedIds.slice(0, 5).join(', ')}${c.failed > 5 ? ', …' : ''})`,
          c.lastRecordId ?? '-',
          c.completed ? 'completed' : 'unfinished',
        ]),
      ),
  },
  'rewrap-start': rewrapView,
  'rewrap-resume': rewrapView,
  'rewrap-status': {
    text: (s) => {
      const keys = table(
        ['SEQ', 'SYSTEM KEY', 'CURRENT', 'RETIRED', 'KEYS'],
        s.systemKeys.map((k) => [
          `#${k.sequence}`,
          k.identity,
          k.current ? 'yes' : '',
          k.retiredAt ?? '',
          String(k.keys),
        ]),
      );
      const campaigns = table(
        ['CAMPAIGN', 'TARGET', 'PASS', 'PROGRESS', 'STATE', 'UPDATED'],
        s.campaigns.map((c) => [
          c.campaignId,
          c.targetStkIdentity,
          String(c.pass),
          `${c.done}/${c.keys}`,
          c.finished ? 'finished' : 'unfinished',
          c.updatedAt,
        ]),
      );
      return `${keys}\n${s.pending} keys under an older system key\n\n${campaigns}`;
    },
  },
  'retire-stk': { text: (r) => `system key #${r.sequence} (${r.identity}) retired\n` },
  'destroy-stk': {
    text: (r) =>
      r.changed
        ? `system key #${r.sequence} (${r.identity}) destroyed in the provider and recorded\n`
        : `system key #${r.sequence} (${r.identity}) is recorded as destroyed already; nothing done\n`,
  },
  checkpoint: {
    text: (r) =>
      r === null
        ? 'nothing was written since the last checkpoint; none written\n'
        : `checkpoint #${r.revision} at position ${r.position}: ${r.streams} stream heads up to position ${r.coveredPosition}, MACed under system key ${r.stkIdentity}\n`,
  },
  verify: verifyView,
  'verify-export': verifyView,
  'audit-export': { text: () => '' },
  'audit-export-file': {
    text: (r) => `exported ${r.events} events (up to position ${r.headPosition}) to ${r.file}\n`,
  },
  'destroy-managed-key': {
    text: (r, input) => {
      const scope = scopeText(input);
      return (
        `${scope}: key ${r.key.metadataHash} (${r.key.state}) will be destroyed once due at ${r.key.destructionDueAt}, ` +
        `by the next destroy-due-keys; until then: keyledger cancel-destroy ${scope} ${r.key.metadataHash}\n`
      );
    },
  },
  'cancel-destroy': {
    text: (r, input) =>
      `${scopeText(input)}: destruction of key ${r.key.metadataHash} cancelled; it stays ${r.key.state}\n`,
  },
  'destroy-due-keys': {
    text: (r) =>
      `${r.destroyed.length === 0 ? 'no destruction is due\n' : receiptTable(r.destroyed)}${r.leftoversDeleted
        .map((keyId) => `deleted the material left behind by destroyed key ${keyId}\n`)
        .join('')}`,
  },
  'destruction-receipts': { text: receiptTable },
  ...POLICY_VIEWS,
  ...TOKEN_VIEWS,
  whoami: {
    text: (r) =>
      `principal  ${r.principal ?? '-'}\ngrants     ${r.grants === null ? 'none apply (local: your own files and keys)' : r.grants.join(', ')}\n`,
  },
};

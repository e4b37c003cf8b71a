import { KeyledgerError } from '../domain/errors.js';
import type { OutputOf } from '../operations/operations.js';
import { formatAge, formatDuration } from './durationText.js';
import { table } from './output.js';
import type { View } from './views.js';

/** How the rotation policy commands show their results (docs/cli.md, "Rotation policies"). */

type PolicyInfo = OutputOf<'list-rotation-policies'>[number];
type DueRun = OutputOf<'rotate-due-keys'>;
type Rotation = OutputOf<'show-key-status'>['rotation'];

function terms(p: { periodMs: number; disableInactiveAfterMs: number | null }): string {
  const inactive =
    p.disableInactiveAfterMs === null
      ? ''
      : `, disable INACTIVE keys after ${formatDuration(p.disableInactiveAfterMs)}`;
  return `rotate every ${formatDuration(p.periodMs)}${inactive}`;
}

function policyTable(policies: readonly PolicyInfo[]): string {
  return table(
    ['TARGET', 'PERIOD', 'DISABLE INACTIVE AFTER', 'SET', 'BY'],
    policies.map((p) => [
      p.target,
      formatDuration(p.periodMs),
      p.disableInactiveAfterMs === null ? '-' : formatDuration(p.disableInactiveAfterMs),
      p.setAt,
      p.setBy,
    ]),
  );
}

/** show-key-status: the line below the key table about the scope's rotation. */
export function rotationNote(r: Rotation): string {
  if (r.policy === null) return 'rotation: no policy\n';
  const whose = r.policy.source === 'scope' ? 'the scope’s own policy' : 'the default policy';
  const due =
    r.nextRotationDueAt === null
      ? 'no rotation due (no ACTIVE key)'
      : `next rotation due at ${r.nextRotationDueAt}${r.rotationDue ? ' (due now)' : ''}`;
  return `rotation: ${terms(r.policy)} (${whose}); ${due}\n`;
}

/** show-key-status: the keys with their ages (the key table of the other commands plus AGE). */
export function keyAgeTable(
  keys: readonly {
    custodian: string;
    namespace: string;
    state: string;
    metadataHash: string;
    checksum: string;
    ageMs: number;
    refreshedAt: string;
  }[],
): string {
  return table(
    ['SCOPE', 'STATE', 'METADATA HASH', 'CHECKSUM', 'AGE', 'REFRESHED'],
    keys.map((k) => [
      `${k.custodian}:${k.namespace}`,
      k.state,
      k.metadataHash,
      k.checksum,
      formatAge(k.ageMs),
      k.refreshedAt,
    ]),
  );
}

function dueTarget(r: DueRun['results'][number]): string {
  return r.kind === 'rotate-stk' ? '@stk' : r.scope;
}

function dueWhat(r: DueRun['results'][number]): string {
  switch (r.kind) {
    case 'rotate-key':
      return `rotate (ACTIVE since ${r.activeSince}, due ${r.dueAt})`;
    case 'disable-key':
      return `disable INACTIVE key ${r.metadataHash} (INACTIVE since ${r.inactiveSince})`;
    case 'rotate-stk':
      return `rotate the system key (recorded ${r.recordedAt}, due ${r.dueAt})`;
    default: {
      const unreachable: never = r;
      return unreachable;
    }
  }
}

function dueText(r: DueRun): string {
  if (r.results.length === 0) return `nothing is due (checked at ${r.checkedAt})\n`;
  const rows = table(
    ['TARGET', 'ACTION', 'OUTCOME'],
    r.results.map((x) => [
      dueTarget(x),
      dueWhat(x),
      x.outcome === 'failed' ? `failed: ${x.code}` : x.outcome,
    ]),
  );
  const summary = r.dryRun
    ? `dry run: ${r.results.length} due, nothing changed\n`
    : `${r.done} done, ${r.failed} failed${r.stopped ? '; stopped: run again for the rest' : ''}\n`;
  return `${rows}${summary}`;
}

export const POLICY_VIEWS: {
  readonly 'set-rotation-policy': View<OutputOf<'set-rotation-policy'>>;
  readonly 'clear-rotation-policy': View<OutputOf<'clear-rotation-policy'>>;
  readonly 'list-rotation-policies': View<OutputOf<'list-rotation-policies'>>;
  readonly 'rotation-policy-history': View<OutputOf<'rotation-policy-history'>>;
  readonly 'rotate-due-keys': View<OutputOf<'rotate-due-keys'>>;
} = {
  'set-rotation-policy': {
    text: (r) =>
      r.policy === null
        ? `${r.target}: no policy\n`
        : `${r.target}: ${terms(r.policy)}${r.changed ? '' : ' (unchanged: nothing written)'}\n`,
  },
  'clear-rotation-policy': { text: (r) => `${r.target}: rotation policy cleared\n` },
  'list-rotation-policies': { text: policyTable },
  'rotation-policy-history': {
    text: (entries) =>
      table(
        ['POSITION', 'TARGET', 'CHANGE', 'WHEN', 'BY', 'REASON'],
        entries.map((e) => [
          e.position,
          e.target,
          `${e.from === null ? 'none' : formatDuration(e.from.periodMs)} → ${e.to === null ? 'none' : formatDuration(e.to.periodMs)}`,
          e.occurredAt,
          e.actor,
          e.reason ?? '',
        ]),
      ),
  },
  'rotate-due-keys': {
    text: dueText,
    failure: (r) => {
      const first = r.results.find((x) => x.outcome === 'failed');
      if (first === undefined) return null;
      return new KeyledgerError(
        'ERR_DUE_ROTATION_FAILED',
        `${r.failed} due action(s) failed; first: ${dueTarget(first)}: ${first.message ?? first.code}`,
        { failed: r.failed, firstCode: first.code ?? 'ERR_INTERNAL', firstTarget: dueTarget(first) },
      );
    },
  },
};

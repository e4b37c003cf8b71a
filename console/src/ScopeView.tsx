import { useEffect, useState } from 'preact/hooks';
import type { PendingAction } from './ActionDialog.js';
import { type Api, ApiError } from './api.js';
import type { Grants } from './grants.js';
import { HistoryTable } from './HistoryTable.js';
import type { HistoryEntry, KeyInfo, ScopeStatus } from './model.js';
import { formatTime, plainName, shortHash } from './names.js';
import { Custodian } from './Overview.js';
import { StateBadge } from './StateBadge.js';
import { Timeline } from './Timeline.js';

interface Props {
  readonly api: Api;
  readonly grants: Grants;
  readonly custodian: string;
  readonly namespace: string;
  readonly version: number;
  onBack(): void;
  onAction(action: PendingAction): void;
}

function message(error: unknown): string {
  return error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
}

/** A scope: its keys (now or as of a moment), its timeline and its history, and the actions allowed. */
export function ScopeView(props: Props) {
  const { api, grants, custodian, namespace, version } = props;
  const scope = `${custodian}:${namespace}`;
  const mayAudit = grants.may('audit', custodian);
  const [status, setStatus] = useState<ScopeStatus | null>(null);
  const [entries, setEntries] = useState<HistoryEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  // The as-of point: an index into the history; null is now.
  const [cut, setCut] = useState<number | null>(null);
  const [asOf, setAsOf] = useState<ScopeStatus | null>(null);

  useEffect(() => {
    api.call<ScopeStatus>('show-key-status', { scope }).then(setStatus, (e: unknown) => setError(message(e)));
    if (mayAudit)
      api.call<HistoryEntry[]>('history', { scope }).then(setEntries, (e: unknown) => setError(message(e)));
  }, [api, scope, mayAudit, version]);

  const cutEntry = cut === null ? undefined : entries?.[cut];
  useEffect(() => {
    if (cutEntry === undefined) {
      setAsOf(null);
      return;
    }
    api
      .call<ScopeStatus>('scope-as-of', { scope, at: cutEntry.position })
      .then(setAsOf, (e: unknown) => setError(message(e)));
  }, [api, scope, cutEntry?.position]);

  const shown = cut === null ? status : asOf;
  const name = plainName(custodian) ?? custodian;
  const mayOperate = cut === null && grants.may('operate', custodian);
  const mayAdmin = cut === null && grants.may('admin', custodian);
  const last = entries === null ? 0 : entries.length - 1;

  return (
    <main class="scope" aria-labelledby="scope-title">
      <p>
        <button type="button" class="link" onClick={props.onBack}>
          ← All scopes
        </button>
      </p>
      <h2 id="scope-title">
        <Custodian custodian={custodian} /> : <code>{namespace}</code>{' '}
        {shown?.marker != null && <StateBadge state={shown.marker} />}
      </h2>
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {mayOperate && status !== null && (
        <div class="toolbar" role="toolbar" aria-label="Scope actions">
          {status.marker === 'ACTIVE' && (
            <>
              <button
                type="button"
                class="primary"
                onClick={() => props.onAction(rotate(api, scope, name, namespace))}
              >
                Rotate key…
              </button>
              <button type="button" onClick={() => props.onAction(disableScope(api, scope, name, namespace))}>
                Disable key management…
              </button>
            </>
          )}
          {status.marker !== 'ACTIVE' && (
            <button type="button" class="primary" onClick={() => props.onAction(enableScope(api, scope))}>
              Enable key management…
            </button>
          )}
        </div>
      )}
      {mayAudit && entries !== null && entries.length > 0 && (
        <section class="card" aria-labelledby="timeline-title">
          <div class="asof">
            <h3 id="timeline-title">Timeline</h3>
            <label for="asof">As of</label>
            <input
              id="asof"
              type="range"
              min={0}
              max={entries.length}
              step={1}
              value={cut === null ? entries.length : cut}
              aria-valuetext={
                cutEntry === undefined
                  ? 'now'
                  : `position ${cutEntry.position}, ${formatTime(cutEntry.occurredAt)}`
              }
              onInput={(e) => {
                const v = Number(e.currentTarget.value);
                setCut(v >= entries.length ? null : v);
              }}
            />
            <output for="asof" class="asof-value">
              {cutEntry === undefined
                ? 'now'
                : `position ${cutEntry.position} · ${formatTime(cutEntry.occurredAt)}`}
            </output>
            {cut !== null && (
              <button type="button" onClick={() => setCut(null)}>
                Back to now
              </button>
            )}
          </div>
          <Timeline entries={entries} cut={cut ?? last} />
          <Legend />
        </section>
      )}
      <section class="card" aria-labelledby="keys-title">
        <h3 id="keys-title">
          Keys{' '}
          {cutEntry !== undefined && (
            <span class="tag asof-tag">
              as of position {cutEntry.position} ({formatTime(cutEntry.occurredAt)})
            </span>
          )}
        </h3>
        {shown === null ? (
          <p class="muted">Loading…</p>
        ) : (
          <KeysTable keys={shown.keys} actions={(k) => keyActions(props, scope, k, mayOperate, mayAdmin)} />
        )}
      </section>
      <section class="card" aria-labelledby="history-title">
        <h3 id="history-title">History</h3>
        {!mayAudit ? (
          <p class="muted">The history and timeline need an audit grant on this custodian.</p>
        ) : entries === null ? (
          <p class="muted">Loading…</p>
        ) : (
          <HistoryTable entries={entries} cut={cut} />
        )}
      </section>
    </main>
  );
}

function Legend() {
  return (
    <p class="legend">
      {(['ACTIVE', 'INACTIVE', 'DISABLED', 'FAILED', 'DESTROYED'] as const).map((s) => (
        <span key={s} class="legend-item">
          <svg width="28" height="14" aria-hidden="true">
            <rect width="28" height="14" fill={`url(#fill-${s})`} rx="2" />
          </svg>
          {s}
        </span>
      ))}
      <span class="legend-item muted">● an event: hover or focus it (Tab) for details</span>
    </p>
  );
}

function KeysTable({
  keys,
  actions,
}: {
  keys: readonly KeyInfo[];
  actions(k: KeyInfo): preact.ComponentChildren;
}) {
  if (keys.length === 0) return <p class="muted">No key.</p>;
  return (
    <div class="table-wrap">
      <table class="keys">
        <thead>
          <tr>
            <th scope="col">Metadata hash</th>
            <th scope="col">State</th>
            <th scope="col">Created</th>
            <th scope="col">Updated</th>
            <th scope="col">System key</th>
            <th scope="col">Destruction</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.metadataHash} data-key={k.metadataHash}>
              <td>
                <code title={k.metadataHash}>{shortHash(k.metadataHash)}</code>
              </td>
              <td>
                <StateBadge state={k.state} />
              </td>
              <td class="nowrap">{formatTime(k.createdAt)}</td>
              <td class="nowrap">{formatTime(k.updatedAt)}</td>
              <td>
                <code>{k.stkIdentity ?? '–'}</code>
              </td>
              <td class="nowrap">
                {k.destructionDueAt === null ? '–' : `due ${formatTime(k.destructionDueAt)}`}
              </td>
              <td class="actions">{actions(k)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function keyActions(props: Props, scope: string, k: KeyInfo, operate: boolean, admin: boolean) {
  const { api } = props;
  const key = k.metadataHash;
  const short = <code>{shortHash(key)}</code>;
  const act = (action: PendingAction) => () => props.onAction(action);
  return (
    <>
      {operate && (k.state === 'ACTIVE' || k.state === 'INACTIVE') && k.destructionDueAt === null && (
        <button
          type="button"
          onClick={act({
            title: 'Disable key',
            body: <p>Disable key {short}: it can no longer encrypt or decrypt until it is enabled again.</p>,
            confirm: 'Disable',
            danger: true,
            run: (reason) =>
              api.call('disable-managed-key', { scope, key }, { reason }).then(() => undefined),
          })}
        >
          Disable…
        </button>
      )}
      {operate && k.state === 'DISABLED' && k.destructionDueAt === null && (
        <button
          type="button"
          onClick={act({
            title: 'Enable key',
            body: <p>Enable key {short} again, as INACTIVE (it decrypts; it does not encrypt new data).</p>,
            confirm: 'Enable',
            run: (reason) => api.call('enable-managed-key', { scope, key }, { reason }).then(() => undefined),
          })}
        >
          Enable…
        </button>
      )}
      {admin && (k.state === 'INACTIVE' || k.state === 'DISABLED') && k.destructionDueAt === null && (
        <button
          type="button"
          class="danger"
          onClick={act({
            title: 'Schedule destruction',
            body: (
              <p>
                Schedule key {short} for destruction (crypto-shredding): after the grace period its material
                is deleted and data under it can never be decrypted again.
              </p>
            ),
            confirm: 'Schedule destruction',
            danger: true,
            grace: true,
            run: (reason, grace) =>
              api.call('destroy-managed-key', { scope, key, grace }, { reason }).then(() => undefined),
          })}
        >
          Destroy…
        </button>
      )}
      {admin && k.destructionDueAt !== null && k.state !== 'DESTROYED' && (
        <button
          type="button"
          onClick={act({
            title: 'Cancel destruction',
            body: <p>Cancel the scheduled destruction of key {short}.</p>,
            confirm: 'Cancel destruction',
            run: (reason) => api.call('cancel-destroy', { scope, key }, { reason }).then(() => undefined),
          })}
        >
          Cancel destruction…
        </button>
      )}
    </>
  );
}

function rotate(api: Api, scope: string, name: string, namespace: string): PendingAction {
  return {
    title: 'Rotate key',
    body: (
      <p>
        Make the provider’s new key ACTIVE for <strong>{name}</strong>:<code>{namespace}</code>; the current
        ACTIVE key becomes INACTIVE (it still decrypts).
      </p>
    ),
    confirm: 'Rotate',
    run: (reason) => api.call('rotate-managed-key', { scope }, { reason }).then(() => undefined),
  };
}

function disableScope(api: Api, scope: string, name: string, namespace: string): PendingAction {
  return {
    title: 'Disable key management',
    body: (
      <p>
        Disable key management for <strong>{name}</strong>:<code>{namespace}</code>: its ACTIVE key becomes
        INACTIVE and no new data is encrypted under this scope.
      </p>
    ),
    confirm: 'Disable',
    danger: true,
    run: (reason) => api.call('disable-key-management', { scope }, { reason }).then(() => undefined),
  };
}

function enableScope(api: Api, scope: string): PendingAction {
  return {
    title: 'Enable key management',
    body: (
      <p>
        Record the provider’s ACTIVE key for <code>{scope}</code>.
      </p>
    ),
    confirm: 'Enable',
    run: (reason) => api.call('enable-key-management', { scope }, { reason }).then(() => undefined),
  };
}

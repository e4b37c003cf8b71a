import { useState } from 'preact/hooks';
import type { PendingAction } from './ActionDialog.js';
import type { Api } from './api.js';
import type { Grants } from './grants.js';
import { countByState, type KeyInfo, type ScopeStatus, STATES } from './model.js';
import { formatTime, plainName, shortHash } from './names.js';
import { StateBadge } from './StateBadge.js';
import { SystemPanels } from './SystemPanels.js';

export interface OverviewProps {
  readonly api: Api;
  readonly grants: Grants;
  readonly scopes: readonly ScopeStatus[] | null;
  readonly error: string | null;
  readonly version: number;
  onOpen(scope: ScopeStatus): void;
  onAction(action: PendingAction): void;
}

export function Custodian({ custodian }: { custodian: string }) {
  const name = plainName(custodian);
  return (
    <span class="custodian">
      {name !== null && <strong>{name}</strong>} <code class="muted">{custodian}</code>
    </span>
  );
}

export function Overview(props: OverviewProps) {
  const { scopes, grants } = props;
  const destructions: KeyInfo[] = (scopes ?? []).flatMap((s) =>
    s.keys.filter((k) => k.destructionDueAt !== null),
  );
  destructions.sort((a, b) => String(a.destructionDueAt).localeCompare(String(b.destructionDueAt)));
  return (
    <main class="overview" aria-labelledby="overview-title">
      <h2 id="overview-title">Scopes</h2>
      {props.error !== null && (
        <p class="error" role="alert">
          {props.error}
        </p>
      )}
      {scopes === null ? (
        <p class="muted">Loading…</p>
      ) : scopes.length === 0 ? (
        <p class="muted">No scope yet.</p>
      ) : (
        <div class="table-wrap">
          <table class="scopes">
            <caption class="sr-only">Every scope you may read, with its marker and keys per state</caption>
            <thead>
              <tr>
                <th scope="col">Custodian</th>
                <th scope="col">Namespace</th>
                <th scope="col">Marker</th>
                {STATES.map((s) => (
                  <th scope="col" class="num" key={s}>
                    <StateBadge state={s} />
                  </th>
                ))}
                <th scope="col">
                  <span class="sr-only">Timeline</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {scopes.map((s) => {
                const counts = countByState(s.keys);
                return (
                  <tr key={`${s.custodian}:${s.namespace}`} data-scope={`${s.custodian}:${s.namespace}`}>
                    <td>
                      <Custodian custodian={s.custodian} />
                    </td>
                    <td>
                      <code>{s.namespace}</code>
                    </td>
                    <td>{s.marker === null ? '–' : <StateBadge state={s.marker} />}</td>
                    {STATES.map((state) => (
                      <td class={`num ${counts[state] === 0 ? 'zero' : ''}`} key={state}>
                        {counts[state]}
                      </td>
                    ))}
                    <td>
                      <button type="button" onClick={() => props.onOpen(s)}>
                        Timeline
                        <span class="sr-only">
                          {' '}
                          of {plainName(s.custodian) ?? s.custodian}:{s.namespace}
                        </span>
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {grants.custodians('operate') !== '*' && grants.custodians('operate').length === 0 ? null : (
        <EnableScope {...props} />
      )}
      <section aria-labelledby="destructions-title" class="card">
        <h2 id="destructions-title">Scheduled destructions</h2>
        {destructions.length === 0 ? (
          <p class="muted">None scheduled.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Scope</th>
                <th scope="col">Key</th>
                <th scope="col">State</th>
                <th scope="col">Due</th>
              </tr>
            </thead>
            <tbody>
              {destructions.map((k) => (
                <tr key={k.metadataHash}>
                  <td>
                    <Custodian custodian={k.custodian} /> <code>{k.namespace}</code>
                  </td>
                  <td>
                    <code title={k.metadataHash}>{shortHash(k.metadataHash)}</code>
                  </td>
                  <td>
                    <StateBadge state={k.state} />
                  </td>
                  <td>
                    {formatTime(k.destructionDueAt)}
                    {k.destructionDueAt !== null && Date.parse(k.destructionDueAt) <= Date.now() && (
                      <span class="tag warn"> due now</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <SystemPanels api={props.api} grants={grants} version={props.version} onAction={props.onAction} />
    </main>
  );
}

/** Enable key management for a new scope (operate). */
function EnableScope(props: OverviewProps) {
  const [scope, setScope] = useState('');
  return (
    <form
      class="card inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        const text = scope.trim();
        if (text.length === 0) return;
        props.onAction({
          title: 'Enable key management',
          body: (
            <p>
              Record the provider’s ACTIVE key for <code>{text}</code>.
            </p>
          ),
          confirm: 'Enable',
          run: async (reason) => {
            await props.api.call('enable-key-management', { scope: text }, { reason });
            setScope('');
          },
        });
      }}
    >
      <label for="new-scope">Enable a scope</label>
      <input
        id="new-scope"
        placeholder="name=tenant-1:orders"
        value={scope}
        onInput={(e) => setScope(e.currentTarget.value)}
        aria-describedby="new-scope-help"
      />
      <button type="submit" disabled={scope.trim().length === 0}>
        Enable…
      </button>
      <span id="new-scope-help" class="muted small">
        &lt;custodian&gt;:&lt;namespace&gt;, custodian as base64, * or name=&lt;plain name&gt;
      </span>
    </form>
  );
}

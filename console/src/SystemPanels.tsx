import { useEffect, useState } from 'preact/hooks';
import type { PendingAction } from './ActionDialog.js';
import { type Api, ApiError } from './api.js';
import type { Grants } from './grants.js';
import type { RewrapStatus, VerifyReport } from './model.js';
import { formatTime } from './names.js';

interface Props {
  readonly api: Api;
  readonly grants: Grants;
  readonly version: number;
  onAction(action: PendingAction): void;
}

function message(error: unknown): string {
  return error instanceof ApiError ? `${error.code}: ${error.message}` : String(error);
}

/** System keys with rewrap progress (read over every custodian) and the integrity status (audit). */
export function SystemPanels({ api, grants, version }: Props) {
  const mayRead = grants.may('read', null);
  const mayAudit = grants.may('audit', null);
  const [rewrap, setRewrap] = useState<RewrapStatus | string | null>(null);
  const [report, setReport] = useState<VerifyReport | string | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [verifiedAt, setVerifiedAt] = useState<string | null>(null);

  useEffect(() => {
    if (!mayRead) return;
    api.call<RewrapStatus>('rewrap-status').then(setRewrap, (e: unknown) => setRewrap(message(e)));
  }, [api, mayRead, version]);

  const runVerify = async () => {
    setVerifying(true);
    try {
      setReport(await api.call<VerifyReport>('verify'));
    } catch (e) {
      setReport(message(e));
    } finally {
      setVerifiedAt(new Date().toISOString());
      setVerifying(false);
    }
  };
  // Verified once when the console opens; again on request.
  useEffect(() => {
    if (mayAudit) void runVerify();
  }, [api, mayAudit]);

  return (
    <div class="panels">
      <section class="card" aria-labelledby="stk-title">
        <h2 id="stk-title">System keys</h2>
        {!mayRead ? (
          <p class="muted">Needs a read grant over every custodian (*).</p>
        ) : rewrap === null ? (
          <p class="muted">Loading…</p>
        ) : typeof rewrap === 'string' ? (
          <p class="error">{rewrap}</p>
        ) : (
          <>
            <table>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Identity</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Keys under it
                  </th>
                </tr>
              </thead>
              <tbody>
                {rewrap.systemKeys.map((k) => (
                  <tr key={k.identity}>
                    <td>{k.sequence}</td>
                    <td>
                      <code>{k.identity}</code>
                    </td>
                    <td>
                      {k.current ? (
                        <span class="tag ok">current</span>
                      ) : k.retiredAt !== null ? (
                        <span class="tag">retired {formatTime(k.retiredAt)}</span>
                      ) : (
                        <span class="tag">previous</span>
                      )}
                    </td>
                    <td class="num">{k.keys}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <RewrapProgress status={rewrap} />
          </>
        )}
      </section>
      <section class="card" aria-labelledby="integrity-title">
        <h2 id="integrity-title">Integrity</h2>
        {!mayAudit ? (
          <p class="muted">Needs an audit grant over every custodian (*).</p>
        ) : (
          <>
            {report === null ? (
              <p class="muted">Verifying…</p>
            ) : typeof report === 'string' ? (
              <p class="error">{report}</p>
            ) : (
              <dl class="facts">
                <dt>Last verify</dt>
                <dd>
                  {report.ok ? (
                    <span class="tag ok">✓ intact</span>
                  ) : (
                    <span class="tag bad">✗ {report.problemCount} problem(s)</span>
                  )}{' '}
                  <span class="muted small">
                    {report.eventsChecked} events to position {report.headPosition}, {formatTime(verifiedAt)}
                  </span>
                </dd>
                {report.firstProblem !== null && (
                  <>
                    <dt>First problem</dt>
                    <dd>
                      position {report.firstProblem.position}: {report.firstProblem.kind}
                    </dd>
                  </>
                )}
                <dt>Last checkpoint</dt>
                <dd>
                  {report.lastCheckpoint === null ? 'none yet' : `position ${report.lastCheckpoint.position}`}
                </dd>
                <dt>Not yet covered</dt>
                <dd>
                  {report.uncoveredEvents} event{report.uncoveredEvents === 1 ? '' : 's'}
                  {report.uncoveredEvents > 0 && (
                    <span class="muted small"> (chained, no checkpoint yet)</span>
                  )}
                </dd>
              </dl>
            )}
            <button type="button" onClick={runVerify} disabled={verifying}>
              {verifying ? 'Verifying…' : 'Run verify'}
            </button>
          </>
        )}
      </section>
    </div>
  );
}

function RewrapProgress({ status }: { status: RewrapStatus }) {
  if (status.open !== null) {
    const { done, keys, campaignId } = status.open;
    return (
      <p>
        Rewrap <code>{campaignId.slice(0, 8)}</code> in progress:{' '}
        <progress max={keys} value={done} aria-label="rewrap progress" /> {done} / {keys} keys
      </p>
    );
  }
  return (
    <p class="muted">
      {status.pending === 0
        ? 'Every key is wrapped under the current system key.'
        : `${status.pending} key(s) still under an older system key (keyledger rewrap).`}
    </p>
  );
}

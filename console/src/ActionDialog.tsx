import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, reasonProblem } from './api.js';

export interface PendingAction {
  readonly title: string;
  /** What will happen, in a sentence or two. */
  readonly body: ComponentChildren;
  readonly confirm: string;
  readonly danger?: boolean;
  /** Extra input besides the reason (the grace period of a destruction). */
  readonly grace?: boolean;
  run(reason: string, grace: string): Promise<void>;
}

/**
 * Every write goes through here: a modal confirmation with a required reason, recorded in the event
 * (Keyledger-Reason). Escape or Cancel closes it without writing.
 */
export function ActionDialog({ action, onClose }: { action: PendingAction; onClose(done: boolean): void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [grace, setGrace] = useState('7d');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog !== null && !dialog.open) dialog.showModal();
  }, []);
  const problem = reasonProblem(reason);
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="action-title" onCancel={() => onClose(false)}>
      <form
        method="dialog"
        onSubmit={async (e) => {
          e.preventDefault();
          if (problem !== null) return;
          setBusy(true);
          setError(null);
          try {
            await action.run(reason, grace);
            onClose(true);
          } catch (err) {
            setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <h2 id="action-title">{action.title}</h2>
        <div class="dialog-body">{action.body}</div>
        {action.grace === true && (
          <>
            <label for="action-grace">Grace period</label>
            <input
              id="action-grace"
              value={grace}
              onInput={(e) => setGrace(e.currentTarget.value)}
              aria-describedby="grace-help"
            />
            <p id="grace-help" class="muted small">
              &lt;n&gt;s, m, h, d or w: the key can still be restored (cancel) until then.
            </p>
          </>
        )}
        <label for="action-reason">Reason</label>
        <textarea
          id="action-reason"
          required
          rows={2}
          maxLength={1024}
          value={reason}
          onInput={(e) => setReason(e.currentTarget.value)}
          aria-describedby="reason-help"
        />
        <p id="reason-help" class="muted small">
          {reason.length > 0 && problem !== null ? problem : 'Recorded with the event, under your name.'}
        </p>
        {error !== null && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={() => onClose(false)}>
            Cancel
          </button>
          <button
            type="submit"
            class={action.danger === true ? 'danger' : 'primary'}
            disabled={busy || problem !== null}
          >
            {busy ? 'Working…' : action.confirm}
          </button>
        </div>
      </form>
    </dialog>
  );
}

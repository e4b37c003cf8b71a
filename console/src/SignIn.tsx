import { useState } from 'preact/hooks';

export function SignIn({
  onSignIn,
  error,
}: {
  onSignIn(token: string): Promise<void>;
  error: string | null;
}) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin">
      <form
        class="card signin-card"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          try {
            await onSignIn(token.trim());
          } finally {
            setBusy(false);
          }
        }}
      >
        <h1>
          <span class="logo" aria-hidden="true">
            ⛁
          </span>{' '}
          keyledger console
        </h1>
        <p class="muted">
          Sign in with an API token (<code>keyledger token create</code>) or a JWT. It is kept for this tab
          only and forgotten when you sign out.
        </p>
        <label for="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        {error !== null && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy || token.trim().length === 0}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ActionDialog, type PendingAction } from './ActionDialog.js';
import { Api, ApiError } from './api.js';
import { Grants, parseGrants } from './grants.js';
import { LiveFeed } from './LiveFeed.js';
import { followEvents, type LiveState } from './liveEvents.js';
import type { FeedEvent, ScopeStatus, Whoami } from './model.js';
import { Overview } from './Overview.js';
import { ScopeView } from './ScopeView.js';
import { SignIn } from './SignIn.js';

/** The tab's session only: never localStorage, never a URL. Signing out forgets it. */
const TOKEN_KEY = 'keyledger.token';
const FEED_SIZE = 50;

interface Session {
  readonly api: Api;
  readonly me: Whoami;
  readonly grants: Grants;
}

type View = { kind: 'overview' } | { kind: 'scope'; custodian: string; namespace: string };

function message(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === 'ERR_UNAUTHENTICATED') {
      const reason = typeof error.details.reason === 'string' ? ` (${error.details.reason})` : '';
      return `The token was not accepted${reason}. ERR_UNAUTHENTICATED`;
    }
    return `${error.code}: ${error.message}`;
  }
  return String(error);
}

/** The scopes the principal may read: all of them, or those of each custodian it is granted. */
async function loadScopes(api: Api, grants: Grants): Promise<ScopeStatus[]> {
  const custodians = grants.custodians('read');
  if (custodians === '*') return api.call<ScopeStatus[]>('list-scopes');
  const lists = await Promise.all(
    custodians.map((custodian) => api.call<ScopeStatus[]>('list-scopes', { custodian })),
  );
  return lists.flat();
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [signInError, setSignInError] = useState<string | null>(null);
  const [view, setView] = useState<View>({ kind: 'overview' });
  const [scopes, setScopes] = useState<ScopeStatus[] | null>(null);
  const [scopesError, setScopesError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  const [feed, setFeed] = useState<FeedEvent[]>([]);
  const [live, setLive] = useState<{ state: LiveState; detail: string | null }>({
    state: 'connecting',
    detail: null,
  });
  const [action, setAction] = useState<PendingAction | null>(null);
  const refreshTimer = useRef<number | null>(null);

  const signIn = useCallback(async (token: string) => {
    const api = new Api(token);
    try {
      const me = await api.call<Whoami>('whoami');
      sessionStorage.setItem(TOKEN_KEY, token);
      setSignInError(null);
      setSession({ api, me, grants: new Grants(parseGrants(me.grants)) });
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      setSignInError(message(error));
    }
  }, []);

  const signOut = useCallback(() => {
    sessionStorage.removeItem(TOKEN_KEY);
    setSession(null);
    setScopes(null);
    setFeed([]);
    setView({ kind: 'overview' });
  }, []);

  // A reload of the tab keeps the session (sessionStorage); a new tab or window does not.
  useEffect(() => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token !== null) void signIn(token);
  }, [signIn]);

  // Several events in a burst (a rotation writes one, a bulk change many) refresh once.
  const refreshSoon = useCallback(() => {
    if (refreshTimer.current !== null) return;
    refreshTimer.current = window.setTimeout(() => {
      refreshTimer.current = null;
      setVersion((v) => v + 1);
    }, 100);
  }, []);

  useEffect(() => {
    if (session === null) return;
    let stale = false;
    loadScopes(session.api, session.grants).then(
      (list) => {
        if (stale) return;
        setScopes(list);
        setScopesError(null);
      },
      (error: unknown) => {
        if (stale) return;
        if (error instanceof ApiError && error.code === 'ERR_UNAUTHENTICATED') signOut();
        setScopesError(message(error));
        setScopes((s) => s ?? []);
      },
    );
    return () => {
      stale = true;
    };
  }, [session, version, signOut]);

  useEffect(() => {
    if (session === null) return;
    return followEvents(session.api, {
      // Whatever happened before the stream opened is read again now; from here on, events say it.
      onOpen: refreshSoon,
      onEvent: (event) => {
        setFeed((f) => [event, ...f.filter((e) => e.position !== event.position)].slice(0, FEED_SIZE));
        refreshSoon();
      },
      onState: (state, detail) => setLive({ state, detail: detail ?? null }),
    });
  }, [session, refreshSoon]);

  const grantsText = useMemo(() => session?.me.grants?.join(', ') ?? 'all (local)', [session]);

  if (session === null) return <SignIn onSignIn={signIn} error={signInError} />;
  return (
    <div class="app">
      <a class="skip" href="#content">
        Skip to content
      </a>
      <header class="top">
        <h1>
          <span class="logo" aria-hidden="true">
            ⛁
          </span>{' '}
          keyledger
        </h1>
        <nav aria-label="Main">
          <button
            type="button"
            class="link"
            aria-current={view.kind === 'overview' ? 'page' : undefined}
            onClick={() => setView({ kind: 'overview' })}
          >
            Overview
          </button>
        </nav>
        <div class="who">
          <span>
            Signed in as <strong class="principal">{session.me.principal ?? '–'}</strong>
          </span>
          <span class="muted small grants" title="your grants">
            {grantsText}
          </span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <div class="layout" id="content">
        {view.kind === 'overview' ? (
          <Overview
            api={session.api}
            grants={session.grants}
            scopes={scopes}
            error={scopesError}
            version={version}
            onOpen={(s) => setView({ kind: 'scope', custodian: s.custodian, namespace: s.namespace })}
            onAction={setAction}
          />
        ) : (
          <ScopeView
            key={`${view.custodian}:${view.namespace}`}
            api={session.api}
            grants={session.grants}
            custodian={view.custodian}
            namespace={view.namespace}
            version={version}
            onBack={() => setView({ kind: 'overview' })}
            onAction={setAction}
          />
        )}
        <LiveFeed events={feed} state={live.state} detail={live.detail} />
      </div>
      {action !== null && (
        <ActionDialog
          action={action}
          onClose={(done) => {
            setAction(null);
            if (done) refreshSoon();
          }}
        />
      )}
    </div>
  );
}

import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, setCsrfToken, setSessionLostHandler, type SessionInfo } from './api.ts';
import { Login } from './pages/login.tsx';
import { MyClients, SubscriptionClients } from './pages/clients.tsx';
import { Users } from './pages/users.tsx';
import { SubscriptionTokens } from './pages/subscription-tokens.tsx';
import { Idps } from './pages/idps.tsx';
import { Outbox } from './pages/outbox.tsx';
import { Audit } from './pages/audit.tsx';
import { Gateway } from './pages/gateway.tsx';
import { PageTitle } from './components.tsx';

interface Page {
  path: string;
  label: string;
  managerOnly: boolean;
  render: (s: SessionInfo) => preact.JSX.Element;
}

const PAGES: Page[] = [
  { path: '/profile/clients', label: 'My Profile › Auth ID Client Management', managerOnly: false, render: (s) => <MyClients session={s} /> },
  { path: '/users', label: 'Users', managerOnly: true, render: (s) => <Users session={s} /> },
  { path: '/clients', label: 'Subscription clients', managerOnly: true, render: (s) => <SubscriptionClients session={s} /> },
  { path: '/subscription-tokens', label: 'Subscription tokens', managerOnly: true, render: () => <SubscriptionTokens /> },
  { path: '/idps', label: 'Identity providers', managerOnly: true, render: () => <Idps /> },
  { path: '/outbox', label: 'Outbox', managerOnly: true, render: () => <Outbox /> },
  { path: '/audit', label: 'Audit log', managerOnly: true, render: () => <Audit /> },
  { path: '/gateway', label: 'Gateway routes', managerOnly: true, render: () => <Gateway /> },
];

const currentPath = () => location.hash.replace(/^#/, '') || '/profile/clients';

export function App() {
  const [session, setSession] = useState<SessionInfo | null>(null);
  const [checked, setChecked] = useState(false);
  const [lost, setLost] = useState<string | null>(null);
  const [path, setPath] = useState(currentPath());

  useEffect(() => {
    const onHash = () => setPath(currentPath());
    window.addEventListener('hashchange', onHash);
    setSessionLostHandler((message) => {
      setCsrfToken('');
      setSession(null);
      setLost(message);
    });
    api<SessionInfo>('GET', '/api/v1/session', undefined, { quietAuth: true })
      .then((s) => {
        setCsrfToken(s.csrfToken);
        setSession(s);
      })
      .catch(() => {})
      .finally(() => setChecked(true));
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  if (!checked) return <p class="loading">Loading…</p>;
  if (!session) {
    return (
      <Login
        notice={lost}
        onSignedIn={(s) => {
          setCsrfToken(s.csrfToken);
          setLost(null);
          setSession(s);
        }}
      />
    );
  }

  const visible = PAGES.filter((p) => !p.managerOnly || session.user.role === 'manager');
  const page = visible.find((p) => p.path === path);
  const signOut = async () => {
    try {
      await api('DELETE', '/api/v1/session', undefined, { quietAuth: true });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    setCsrfToken('');
    setSession(null);
    setLost('You are signed out.');
  };

  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Gatehouse</span>
        <span class="who">
          Signed in as <strong data-testid="whoami">{session.user.username}</strong> ({session.user.role})
        </span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <nav aria-label="Console sections">
        <ul>
          {visible.map((p) => (
            <li key={p.path}>
              <a href={`#${p.path}`} aria-current={p.path === path ? 'page' : undefined}>
                {p.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" key={path}>
        {page ? (
          page.render(session)
        ) : (
          <>
            <PageTitle>Page not found</PageTitle>
            <p>
              There is no console page at <code>{path}</code>
              {PAGES.some((p) => p.path === path) ? ' for your role (managers only)' : ''}. <a href="#/profile/clients">Go to My Profile</a>.
            </p>
          </>
        )}
      </main>
    </div>
  );
}

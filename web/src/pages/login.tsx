import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type SessionInfo } from '../api.ts';
import { ErrorBox, Notice } from '../components.tsx';

export function Login({ onSignedIn, notice }: { onSignedIn: (s: SessionInfo) => void; notice: string | null }) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const s = await api<SessionInfo>('POST', '/api/v1/session', { username, password }, { quietAuth: true });
      setPassword('');
      onSignedIn(s);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login" id="main">
      <h1>Gatehouse console</h1>
      {notice && <Notice>{notice}</Notice>}
      <form onSubmit={submit} aria-describedby="login-help">
        <p id="login-help" class="muted">
          Sign in with your Gatehouse username and password. Your user needs the UI Access permission.
        </p>
        <label for="username">Username</label>
        <input id="username" ref={first} autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <label for="password">Password</label>
        <input id="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

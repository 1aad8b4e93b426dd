import { useState } from 'preact/hooks';
import { api, fmtDate, type SessionInfo } from '../api.ts';
import { Confirm, ErrorBox, ModulePicker, Notice, PageTitle, useLoad } from '../components.tsx';

interface User {
  id: string;
  username: string;
  email: string | null;
  role: 'manager' | 'user';
  status: 'active' | 'deactivated';
  ssoEnabled: boolean;
  apiAccess: boolean;
  uiAccess: boolean;
  modules: string[];
  createdAt: string;
}

interface Form {
  username: string;
  password: string;
  email: string;
  role: 'manager' | 'user';
  apiAccess: boolean;
  uiAccess: boolean;
  ssoEnabled: boolean;
  modules: string[];
}

const EMPTY: Form = { username: '', password: '', email: '', role: 'user', apiAccess: true, uiAccess: true, ssoEnabled: false, modules: [] };

export function Users({ session }: { session: SessionInfo }) {
  const { data, error, reload } = useLoad(() => api<{ users: User[] }>('GET', '/api/v1/users'));
  const [editing, setEditing] = useState<User | null>(null);
  const [statusChange, setStatusChange] = useState<User | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const available = session.user.modules;

  return (
    <>
      <PageTitle>Users</PageTitle>
      <p class="muted">Managers have every permission. Other users need API Access and a module's permission to call its API, and UI Access to use this console.</p>
      <UserForm
        key="create"
        title="Create a user"
        available={available}
        initial={EMPTY}
        create
        onSubmit={async (f) => {
          const u = await api<User>('POST', '/api/v1/users', {
            username: f.username,
            ...(f.password ? { password: f.password } : {}),
            ...(f.email ? { email: f.email } : {}),
            role: f.role,
            apiAccess: f.apiAccess,
            uiAccess: f.uiAccess,
            ssoEnabled: f.ssoEnabled,
            modules: f.modules,
          });
          setNotice(`User ${u.username} created.`);
          reload();
        }}
      />
      {notice && <Notice>{notice}</Notice>}
      <section aria-labelledby="users-title">
        <h2 id="users-title">Users of {session.subscription.name ?? 'the subscription'}</h2>
        <ErrorBox error={error} />
        {data && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Username</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">API</th>
                  <th scope="col">UI</th>
                  <th scope="col">SSO</th>
                  <th scope="col">Modules</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {data.users.map((u) => (
                  <tr key={u.id} data-username={u.username}>
                    <th scope="row">{u.username}</th>
                    <td>{u.role}</td>
                    <td data-testid={`status-${u.username}`}>{u.status}</td>
                    <td>{u.role === 'manager' || u.apiAccess ? 'yes' : 'no'}</td>
                    <td>{u.role === 'manager' || u.uiAccess ? 'yes' : 'no'}</td>
                    <td>{u.ssoEnabled ? 'on' : 'off'}</td>
                    <td>{u.role === 'manager' ? 'all' : u.modules.join(', ') || '—'}</td>
                    <td>{fmtDate(u.createdAt)}</td>
                    <td class="row-actions">
                      <button type="button" onClick={() => setEditing(u)} aria-label={`Edit ${u.username}`}>
                        Edit
                      </button>
                      {u.id !== session.user.id && (
                        <button type="button" class={u.status === 'active' ? 'danger' : ''} onClick={() => setStatusChange(u)} aria-label={`${u.status === 'active' ? 'Deactivate' : 'Activate'} ${u.username}`}>
                          {u.status === 'active' ? 'Deactivate' : 'Activate'}
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {editing && (
        <UserForm
          key={editing.id}
          title={`Edit ${editing.username}`}
          available={available}
          initial={{ ...EMPTY, username: editing.username, email: editing.email ?? '', role: editing.role, apiAccess: editing.apiAccess, uiAccess: editing.uiAccess, ssoEnabled: editing.ssoEnabled, modules: editing.modules }}
          onCancel={() => setEditing(null)}
          onSubmit={async (f) => {
            await api('PATCH', `/api/v1/users/${encodeURIComponent(editing.id)}`, {
              role: f.role,
              apiAccess: f.apiAccess,
              uiAccess: f.uiAccess,
              ssoEnabled: f.ssoEnabled,
              modules: f.modules,
              email: f.email || null,
              ...(f.password ? { password: f.password } : {}),
            });
            setNotice(`User ${editing.username} updated. The change applies to their existing tokens on their next use.`);
            setEditing(null);
            reload();
          }}
        />
      )}
      {statusChange && (
        <Confirm
          title={`${statusChange.status === 'active' ? 'Deactivate' : 'Activate'} ${statusChange.username}?`}
          confirmLabel={statusChange.status === 'active' ? 'Deactivate user' : 'Activate user'}
          danger={statusChange.status === 'active'}
          onClose={() => setStatusChange(null)}
          onConfirm={async () => {
            const action = statusChange.status === 'active' ? 'deactivate' : 'activate';
            await api('POST', `/api/v1/users/${encodeURIComponent(statusChange.id)}/${action}`);
            setNotice(`User ${statusChange.username} ${action}d.`);
            reload();
          }}
        >
          {statusChange.status === 'active' ? (
            <>
              <p>Effect on existing tokens, at once:</p>
              <ul data-testid="deactivate-effect">
                <li>Their password tokens (from /auth), tokens of their user-level clients and tokens exchanged from an identity provider are <strong>refused</strong>, and they cannot get new ones.</li>
                <li>Their console sessions end.</li>
                <li>Subscription-level clients and subscription tokens <strong>keep working</strong>: they are not tied to a user.</li>
                <li>If you activate the user again, their tokens that have not expired yet work again.</li>
              </ul>
            </>
          ) : (
            <p>They can sign in again, and their tokens that have not expired yet work again.</p>
          )}
        </Confirm>
      )}
    </>
  );
}

function UserForm(props: { title: string; available: string[]; initial: Form; create?: boolean; onSubmit: (f: Form) => Promise<void>; onCancel?: () => void }) {
  const [f, setF] = useState<Form>(props.initial);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const p = props.create ? 'new-user' : 'edit-user';
  const set = <K extends keyof Form>(k: K, v: Form[K]) => setF((x) => ({ ...x, [k]: v }));
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onSubmit(f);
      if (props.create) setF(props.initial);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby={`${p}-title`}>
      <h2 id={`${p}-title`}>{props.title}</h2>
      {props.create && (
        <>
          <label for={`${p}-username`}>Username</label>
          <input id={`${p}-username`} required maxLength={64} autocomplete="off" value={f.username} onInput={(e) => set('username', e.currentTarget.value)} />
        </>
      )}
      <label for={`${p}-password`}>{props.create ? 'Password' : 'New password (leave empty to keep)'}</label>
      <input id={`${p}-password`} type="password" autocomplete="new-password" value={f.password} onInput={(e) => set('password', e.currentTarget.value)} />
      <label for={`${p}-email`}>Email (optional)</label>
      <input id={`${p}-email`} type="email" value={f.email} onInput={(e) => set('email', e.currentTarget.value)} />
      <label for={`${p}-role`}>Role</label>
      <select id={`${p}-role`} value={f.role} onChange={(e) => set('role', e.currentTarget.value as Form['role'])}>
        <option value="user">User</option>
        <option value="manager">Manager (every permission)</option>
      </select>
      <fieldset>
        <legend>Permissions</legend>
        <div class="check">
          <input id={`${p}-api`} type="checkbox" checked={f.apiAccess} onChange={(e) => set('apiAccess', e.currentTarget.checked)} />
          <label for={`${p}-api`}>API Access</label>
        </div>
        <div class="check">
          <input id={`${p}-ui`} type="checkbox" checked={f.uiAccess} onChange={(e) => set('uiAccess', e.currentTarget.checked)} />
          <label for={`${p}-ui`}>UI Access</label>
        </div>
        <div class="check">
          <input id={`${p}-sso`} type="checkbox" checked={f.ssoEnabled} onChange={(e) => set('ssoEnabled', e.currentTarget.checked)} />
          <label for={`${p}-sso`}>SSO enabled (no password sign-in to the API or console)</label>
        </div>
      </fieldset>
      <ModulePicker idPrefix={`${p}-mod`} legend="Module API permissions" available={props.available} value={f.modules} onChange={(v) => set('modules', v)} />
      <ErrorBox error={error} />
      <div class="actions">
        {props.onCancel && (
          <button type="button" onClick={props.onCancel}>
            Cancel
          </button>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {props.create ? 'Create user' : 'Save changes'}
        </button>
      </div>
    </form>
  );
}

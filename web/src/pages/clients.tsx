import { useState } from 'preact/hooks';
import { api, fmtDate, type SessionInfo } from '../api.ts';
import { Confirm, ErrorBox, FocusHeading, ModulePicker, Notice, PageTitle, SecretValue, useLoad } from '../components.tsx';

interface Client {
  clientId: string;
  name: string;
  level: 'user' | 'subscription';
  allModules: boolean;
  modules: string[];
  createdBy: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
}
interface Created extends Client {
  clientSecret: string;
}
interface IssuedToken {
  token: string;
  expiresAt: string;
  expiresIn: number;
  clientId: string;
}

export function MyClients({ session }: { session: SessionInfo }) {
  return (
    <ClientsPage
      session={session}
      level="user"
      title="My Profile › Auth ID Client Management"
      intro="User-level clients act as you: their tokens carry your module permissions and stop working if your user is deactivated. Use the client ID and secret with POST /auth/oidc, or generate a token here."
      filter={(c) => c.level === 'user' && c.createdBy === session.user.id}
    />
  );
}

export function SubscriptionClients({ session }: { session: SessionInfo }) {
  return (
    <ClientsPage
      session={session}
      level="subscription"
      title="Subscription-level clients"
      intro="Subscription-level clients carry no user: their tokens keep working when users are deactivated. Use them with POST /auth/oauth or the standard /oauth2/token endpoint."
      filter={(c) => c.level === 'subscription'}
    />
  );
}

function ClientsPage(props: { session: SessionInfo; level: 'user' | 'subscription'; title: string; intro: string; filter: (c: Client) => boolean }) {
  const { data, error, reload } = useLoad(() => api<{ clients: Client[] }>('GET', '/api/v1/clients'));
  const [created, setCreated] = useState<Created | null>(null);
  const [issued, setIssued] = useState<IssuedToken | null>(null);
  const [deleting, setDeleting] = useState<Client | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const clients = data?.clients.filter(props.filter) ?? [];

  const generate = async (c: Client) => {
    setActionError(null);
    setIssued(null);
    try {
      setIssued(await api<IssuedToken>('POST', `/api/v1/clients/${encodeURIComponent(c.clientId)}/token`));
    } catch (e) {
      setActionError(e);
    }
  };

  return (
    <>
      <PageTitle>{props.title}</PageTitle>
      <p class="muted">{props.intro}</p>
      <CreateClient
        level={props.level}
        available={props.session.user.modules}
        onCreated={(c) => {
          setCreated(c);
          setIssued(null);
          reload();
        }}
      />
      {created && (
        <section class="card once" aria-labelledby="created-title">
          <FocusHeading id="created-title">Client “{created.name}” created</FocusHeading>
          <p class="warning">
            <strong>Copy the client secret now.</strong> It is shown only this once; Gatehouse keeps only a hash of it. If you lose it, delete the client and create a new one.
          </p>
          <dl>
            <dt>Client ID</dt>
            <dd>
              <code data-testid="new-client-id">{created.clientId}</code>
            </dd>
          </dl>
          <SecretValue id="client-secret" label="Client secret" value={created.clientSecret} />
          <button type="button" onClick={() => setCreated(null)}>
            I have saved the secret
          </button>
        </section>
      )}
      {issued && (
        <section class="card once" aria-labelledby="token-title">
          <FocusHeading id="token-title">Token generated</FocusHeading>
          <p>
            Valid until <strong data-testid="token-expiry">{fmtDate(issued.expiresAt)}</strong> ({Math.round(issued.expiresIn / 3600)} hours). Send it as{' '}
            <code>Authorization: Bearer &lt;token&gt;</code>. It is not shown again.
          </p>
          <SecretValue id="generated-token" label="Token" value={issued.token} />
          <button type="button" onClick={() => setIssued(null)}>
            Done
          </button>
        </section>
      )}
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={actionError} />
      <section aria-labelledby="list-title">
        <h2 id="list-title">{props.level === 'user' ? 'My clients' : 'Clients'}</h2>
        <ErrorBox error={error} />
        {data && clients.length === 0 && <p>No clients yet.</p>}
        {clients.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Client ID</th>
                  <th scope="col">Modules</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last token</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {clients.map((c) => (
                  <tr key={c.clientId}>
                    <th scope="row">{c.name}</th>
                    <td>
                      <code>{c.clientId}</code>
                    </td>
                    <td>{c.allModules ? 'All modules' : c.modules.join(', ')}</td>
                    <td>{fmtDate(c.createdAt)}</td>
                    <td>{fmtDate(c.lastUsedAt)}</td>
                    <td class="row-actions">
                      <button type="button" onClick={() => generate(c)} aria-label={`Generate token for ${c.name}`}>
                        Generate token
                      </button>
                      <button type="button" class="danger" onClick={() => setDeleting(c)} aria-label={`Delete ${c.name}`}>
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {deleting && (
        <Confirm
          title={`Delete client “${deleting.name}”?`}
          confirmLabel="Delete client"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            await api('DELETE', `/api/v1/clients/${encodeURIComponent(deleting.clientId)}`);
            setNotice(`Client “${deleting.name}” deleted.`);
            reload();
          }}
        >
          <p>
            Its secret stops working, and every token already issued by it is refused at once. This cannot be undone.
          </p>
        </Confirm>
      )}
    </>
  );
}

function CreateClient({ level, available, onCreated }: { level: 'user' | 'subscription'; available: string[]; onCreated: (c: Created) => void }) {
  const [name, setName] = useState('');
  const [modules, setModules] = useState<string[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const all = available.length > 0 && available.every((m) => modules.includes(m));
      const c = await api<Created>('POST', '/api/v1/clients', { name, level, modules: all ? ['all'] : modules });
      setName('');
      setModules([]);
      onCreated(c);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="create-client-title">
      <h2 id="create-client-title">Create {level === 'user' ? 'a user-level' : 'a subscription-level'} client</h2>
      <label for="client-name">Client name</label>
      <input id="client-name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      <ModulePicker idPrefix="client-mod" legend={level === 'user' ? 'Modules (from your permissions)' : 'Modules'} available={available} value={modules} onChange={setModules} />
      <ErrorBox error={error} />
      <button type="submit" class="primary" disabled={busy}>
        Create client
      </button>
    </form>
  );
}

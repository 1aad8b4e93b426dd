import { useState } from 'preact/hooks';
import { api, fmtDate, timeLeft } from '../api.ts';
import { Confirm, ErrorBox, FocusHeading, Notice, PageTitle, SecretValue, useLoad } from '../components.tsx';

interface Token {
  secretId: string;
  createdBy: { id: string | null; username: string | null };
  createdAt: string;
  expiresAt: string;
  expired: boolean;
  lastUsedAt: string | null;
  modules: string[];
  alertSent: boolean;
}
interface List {
  count: number;
  limit: number;
  tokens: Token[];
}

const MAX_MINUTES = 525600; // the API's limit: one year
const SOON_MS = 15 * 24 * 3600 * 1000; // the expiry alert's lead time

export function SubscriptionTokens() {
  const { data, error, reload } = useLoad(() => api<List>('GET', '/qas/subscription-token/list'));
  const [amount, setAmount] = useState('30');
  const [unit, setUnit] = useState<'days' | 'minutes'>('days');
  const [created, setCreated] = useState<{ token: string; minutes: number } | null>(null);
  const [createError, setCreateError] = useState<unknown>(null);
  const [deleting, setDeleting] = useState<Token | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const live = data ? data.tokens.filter((t) => !t.expired).length : 0;

  const create = async (e: Event) => {
    e.preventDefault();
    setCreateError(null);
    setBusy(true);
    const n = Number(amount);
    const minutes = unit === 'days' ? n * 1440 : n;
    try {
      const token = await api<string>('POST', '/qas/subscription-token', { expiry: minutes });
      setCreated({ token, minutes });
      reload();
    } catch (err) {
      setCreateError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <PageTitle>Subscription tokens</PageTitle>
      <p class="muted">Long-lived tokens for scripts, tied to the subscription rather than a user. Every active manager gets an email 15 days before one expires.</p>
      {data && (
        <p class="limit" data-testid="token-limit">
          <strong>{live}</strong> of <strong>{data.limit}</strong> live tokens used{live >= data.limit ? ' — the limit is reached; delete a token to create another.' : '.'}
        </p>
      )}
      <form class="card" onSubmit={create} aria-labelledby="new-token-title">
        <h2 id="new-token-title">Create a token</h2>
        <div class="inline">
          <div>
            <label for="expiry-amount">Valid for</label>
            <input id="expiry-amount" type="number" min={1} max={unit === 'days' ? 365 : MAX_MINUTES} step={1} required value={amount} onInput={(e) => setAmount(e.currentTarget.value)} />
          </div>
          <div>
            <label for="expiry-unit">Unit</label>
            <select id="expiry-unit" value={unit} onChange={(e) => setUnit(e.currentTarget.value as 'days' | 'minutes')}>
              <option value="days">days</option>
              <option value="minutes">minutes</option>
            </select>
          </div>
        </div>
        <p class="muted">Up to one year (365 days or {MAX_MINUTES} minutes).</p>
        <ErrorBox error={createError} />
        <button type="submit" class="primary" disabled={busy}>
          Create token
        </button>
      </form>
      {created && (
        <section class="card once" aria-labelledby="sub-token-title">
          <FocusHeading id="sub-token-title">Token created</FocusHeading>
          <p class="warning">
            <strong>Copy the token now.</strong> It is shown only this once. It is valid for {created.minutes} minutes.
          </p>
          <SecretValue id="subscription-token" label="Token" value={created.token} />
          <button type="button" onClick={() => setCreated(null)}>
            I have saved the token
          </button>
        </section>
      )}
      {notice && <Notice>{notice}</Notice>}
      <section aria-labelledby="tokens-title">
        <h2 id="tokens-title">Tokens</h2>
        <ErrorBox error={error} />
        {data && data.tokens.length === 0 && <p>No subscription tokens.</p>}
        {data && data.tokens.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Secret ID</th>
                  <th scope="col">Created by</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Time left</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {data.tokens.map((t) => {
                  const soon = !t.expired && Date.parse(t.expiresAt) - Date.now() <= SOON_MS;
                  return (
                    <tr key={t.secretId} data-secret-id={t.secretId}>
                      <th scope="row">
                        <code>{t.secretId}</code>
                      </th>
                      <td>{t.createdBy.username ?? 'operator (CLI)'}</td>
                      <td>{fmtDate(t.expiresAt)}</td>
                      <td>
                        {t.expired ? <span class="badge bad">expired</span> : timeLeft(t.expiresAt)}
                        {soon && <span class="badge warn"> expires soon</span>}
                      </td>
                      <td>{fmtDate(t.lastUsedAt)}</td>
                      <td class="row-actions">
                        <button type="button" class="danger" onClick={() => setDeleting(t)} aria-label={`Delete token ${t.secretId}`}>
                          Delete
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {deleting && (
        <Confirm
          title="Delete this subscription token?"
          confirmLabel="Delete token"
          danger
          onClose={() => setDeleting(null)}
          onConfirm={async () => {
            const msg = await api<string>('DELETE', `/qas/subscription-token/token/${encodeURIComponent(deleting.secretId)}`);
            setNotice(typeof msg === 'string' && msg ? msg : 'Token deleted.');
            reload();
          }}
        >
          <p>
            Token <code>{deleting.secretId}</code> is refused on its next use, everywhere. Scripts using it stop working. This cannot be undone.
          </p>
        </Confirm>
      )}
    </>
  );
}

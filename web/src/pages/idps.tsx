import { useState } from 'preact/hooks';
import { api, fmtDate } from '../api.ts';
import { Confirm, ErrorBox, Notice, PageTitle, useLoad } from '../components.tsx';

interface Idp {
  id: string;
  name: string;
  issuer: string;
  jwksUri: string | null;
  audiences: string[];
  algorithms: string[];
  userClaim: string | null;
  allowApiTokens: boolean;
  allowExchange: boolean;
  source: string;
  createdAt: string;
}

const list = (s: string) => s.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);

export function Idps() {
  const { data, error, reload } = useLoad(() => api<{ idps: Idp[] }>('GET', '/api/v1/idps'));
  const [issuer, setIssuer] = useState('');
  const [audiences, setAudiences] = useState('');
  const [name, setName] = useState('');
  const [jwksUri, setJwksUri] = useState('');
  const [userClaim, setUserClaim] = useState('');
  const [formError, setFormError] = useState<unknown>(null);
  const [removing, setRemoving] = useState<Idp | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const add = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    try {
      const idp = await api<Idp>('POST', '/api/v1/idps', {
        issuer,
        audiences: list(audiences),
        ...(name ? { name } : {}),
        ...(jwksUri ? { jwksUri } : {}),
        ...(userClaim ? { userClaim } : {}),
      });
      setNotice(`Identity provider ${idp.issuer} is now trusted.`);
      setIssuer('');
      setAudiences('');
      setName('');
      setJwksUri('');
      setUserClaim('');
      reload();
    } catch (err) {
      setFormError(err);
    }
  };

  return (
    <>
      <PageTitle>Trusted identity providers</PageTitle>
      <p class="muted">Tokens issued by these OpenID providers for your users are accepted as Bearer tokens, or exchanged for a Gatehouse token at /oauth2/token.</p>
      <form class="card" onSubmit={add} aria-labelledby="idp-new-title">
        <h2 id="idp-new-title">Trust an identity provider</h2>
        <label for="idp-issuer">Issuer URL</label>
        <input id="idp-issuer" type="url" required value={issuer} onInput={(e) => setIssuer(e.currentTarget.value)} />
        <label for="idp-aud">Audiences (comma-separated)</label>
        <input id="idp-aud" required value={audiences} onInput={(e) => setAudiences(e.currentTarget.value)} />
        <label for="idp-name">Name (optional)</label>
        <input id="idp-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        <label for="idp-jwks">JWKS URL (optional; discovered from the issuer otherwise)</label>
        <input id="idp-jwks" type="url" value={jwksUri} onInput={(e) => setJwksUri(e.currentTarget.value)} />
        <label for="idp-claim">User claim (optional; default preferred_username, then email)</label>
        <input id="idp-claim" value={userClaim} onInput={(e) => setUserClaim(e.currentTarget.value)} />
        <ErrorBox error={formError} />
        <button type="submit" class="primary">
          Add identity provider
        </button>
      </form>
      {notice && <Notice>{notice}</Notice>}
      <section aria-labelledby="idps-title">
        <h2 id="idps-title">Trusted providers</h2>
        <ErrorBox error={error} />
        {data && data.idps.length === 0 && <p>No identity providers are trusted.</p>}
        {data && data.idps.length > 0 && (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Issuer</th>
                  <th scope="col">Audiences</th>
                  <th scope="col">Bearer / exchange</th>
                  <th scope="col">Source</th>
                  <th scope="col">Added</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {data.idps.map((i) => (
                  <tr key={i.id}>
                    <th scope="row">{i.name}</th>
                    <td>
                      <code>{i.issuer}</code>
                    </td>
                    <td>{i.audiences.join(', ')}</td>
                    <td>
                      {i.allowApiTokens ? 'yes' : 'no'} / {i.allowExchange ? 'yes' : 'no'}
                    </td>
                    <td>{i.source === 'config' ? 'config file' : 'API'}</td>
                    <td>{fmtDate(i.createdAt)}</td>
                    <td class="row-actions">
                      <button type="button" class="danger" onClick={() => setRemoving(i)} aria-label={`Remove ${i.name}`}>
                        Remove
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {removing && (
        <Confirm
          title={`Stop trusting ${removing.name}?`}
          confirmLabel="Remove"
          danger
          onClose={() => setRemoving(null)}
          onConfirm={async () => {
            await api('DELETE', `/api/v1/idps/${encodeURIComponent(removing.id)}`);
            setNotice(`${removing.name} is no longer trusted.`);
            reload();
          }}
        >
          <p>Its tokens, and Gatehouse tokens exchanged from them, are refused from now on.</p>
        </Confirm>
      )}
    </>
  );
}

import { api, fmtDate } from '../api.ts';
import { ErrorBox, PageTitle, useLoad } from '../components.tsx';

interface Message {
  id: string;
  kind: string;
  channel: string;
  recipient: string | null;
  subject: string;
  body: string;
  status: string;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  sentAt: string | null;
}

export function Outbox() {
  const { data, error, reload } = useLoad(() => api<{ messages: Message[] }>('GET', '/api/v1/outbox'));
  return (
    <>
      <PageTitle>Outbox</PageTitle>
      <p class="muted">Expiry alerts and their delivery state. Without SMTP configured, messages are kept here (status “stored”).</p>
      <button type="button" onClick={reload}>
        Refresh
      </button>
      <ErrorBox error={error} />
      {data && data.messages.length === 0 && <p>No messages.</p>}
      {data && data.messages.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Created</th>
                <th scope="col">Channel</th>
                <th scope="col">Recipient</th>
                <th scope="col">Subject</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
              </tr>
            </thead>
            <tbody>
              {data.messages.map((m) => (
                <tr key={m.id}>
                  <td>{fmtDate(m.createdAt)}</td>
                  <td>{m.channel}</td>
                  <td>{m.recipient ?? '—'}</td>
                  <td>
                    <details>
                      <summary>{m.subject}</summary>
                      <pre>{m.body}</pre>
                    </details>
                  </td>
                  <td>
                    {m.status}
                    {m.lastError && <span class="muted"> ({m.lastError})</span>}
                  </td>
                  <td>{m.attempts}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

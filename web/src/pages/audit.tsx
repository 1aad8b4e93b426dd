import { useState } from 'preact/hooks';
import { api, fmtDate } from '../api.ts';
import { ErrorBox, PageTitle, useLoad } from '../components.tsx';

interface Event {
  id: string;
  at: string;
  actorType: string;
  actorId: string | null;
  actorName: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  reason: string | null;
  sourceIp: string | null;
}

interface Filters {
  action: string;
  outcome: string;
  actor: string;
  since: string;
  limit: string;
}

export function Audit() {
  const [draft, setDraft] = useState<Filters>({ action: '', outcome: '', actor: '', since: '', limit: '100' });
  const [applied, setApplied] = useState<Filters>(draft);
  const { data, error } = useLoad(() => {
    const q = new URLSearchParams();
    if (applied.action) q.set('action', applied.action);
    if (applied.outcome) q.set('outcome', applied.outcome);
    if (applied.actor) q.set('actor', applied.actor);
    if (applied.since) q.set('since', new Date(applied.since).toISOString());
    if (applied.limit) q.set('limit', applied.limit);
    return api<{ events: Event[] }>('GET', `/api/v1/audit?${q}`);
  }, [applied]);
  const set = (k: keyof Filters, v: string) => setDraft((d) => ({ ...d, [k]: v }));

  return (
    <>
      <PageTitle>Audit log</PageTitle>
      <form
        class="card filters"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ ...draft });
        }}
        aria-label="Audit filters"
      >
        <div>
          <label for="f-action">Action</label>
          <input id="f-action" placeholder="e.g. user.deactivate" value={draft.action} onInput={(e) => set('action', e.currentTarget.value)} />
        </div>
        <div>
          <label for="f-outcome">Outcome</label>
          <select id="f-outcome" value={draft.outcome} onChange={(e) => set('outcome', e.currentTarget.value)}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="failure">failure</option>
            <option value="denied">denied</option>
          </select>
        </div>
        <div>
          <label for="f-actor">Actor ID</label>
          <input id="f-actor" value={draft.actor} onInput={(e) => set('actor', e.currentTarget.value)} />
        </div>
        <div>
          <label for="f-since">Since</label>
          <input id="f-since" type="datetime-local" value={draft.since} onInput={(e) => set('since', e.currentTarget.value)} />
        </div>
        <div>
          <label for="f-limit">Show at most</label>
          <input id="f-limit" type="number" min={1} max={1000} value={draft.limit} onInput={(e) => set('limit', e.currentTarget.value)} />
        </div>
        <button type="submit" class="primary">
          Apply filters
        </button>
      </form>
      <ErrorBox error={error} />
      {data && data.events.length === 0 && <p>No events match.</p>}
      {data && data.events.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Outcome</th>
                <th scope="col">Reason</th>
                <th scope="col">Source IP</th>
              </tr>
            </thead>
            <tbody>
              {data.events.map((ev) => (
                <tr key={ev.id}>
                  <td>{fmtDate(ev.at)}</td>
                  <td>
                    {ev.actorName ?? ev.actorType}
                    {ev.actorId && (
                      <span class="muted">
                        {' '}
                        <code>{ev.actorId}</code>
                      </span>
                    )}
                  </td>
                  <td>
                    <code>{ev.action}</code>
                  </td>
                  <td>{ev.targetId ? `${ev.targetType ?? ''} ${ev.targetId}` : '—'}</td>
                  <td>
                    <span class={`badge ${ev.outcome === 'success' ? 'ok' : 'bad'}`}>{ev.outcome}</span>
                  </td>
                  <td>{ev.reason ?? ''}</td>
                  <td>{ev.sourceIp ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

import { api, ApiError } from '../api.ts';
import { ErrorBox, PageTitle, useLoad } from '../components.tsx';

type Row = Record<string, unknown>;

function cell(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v)) return v.map(cell).join(', ');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') return Object.entries(v as Row).map(([k, x]) => `${k}: ${cell(x)}`).join('; ');
  return String(v);
}

/** A table of whatever rows the API returns: the console does not restate the route model. */
function Table({ title, rows }: { title: string; rows: Row[] }) {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return (
    <section aria-label={title}>
      <h2>{title}</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              {cols.map((c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={i}>
                {cols.map((c) => (
                  <td key={c}>{cell(r[c])}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

const title = (k: string) => (k === 'routes' ? 'Routes' : k === 'matrix' || /support/i.test(k) ? 'Token-based authentication support matrix' : k);

export function Gateway() {
  const { data, error } = useLoad(() =>
    api<Row | Row[]>('GET', '/api/v1/routes').then(
      (d) => ({ ok: true as const, d }),
      (e) => {
        if (e instanceof ApiError && (e.status === 404 || e.status === 501 || e.status === 503)) return { ok: false as const, message: e.message };
        throw e;
      },
    ),
  );
  const tables: Array<[string, Row[]]> = [];
  if (data?.ok) {
    const d = data.d;
    if (Array.isArray(d)) tables.push(['routes', d]);
    else for (const [k, v] of Object.entries(d)) if (Array.isArray(v) && v.every((x) => x && typeof x === 'object')) tables.push([k, v as Row[]]);
  }
  return (
    <>
      <PageTitle>Gateway routes and support matrix</PageTitle>
      <ErrorBox error={error} />
      {data && !data.ok && (
        <p class="notice" role="status" data-testid="gateway-missing">
          Gateway not configured: this server does not publish a route table (GET /api/v1/routes answered “{data.message}”).
        </p>
      )}
      {data?.ok && tables.length === 0 && <p>The gateway has no routes.</p>}
      {tables.map(([k, rows]) => (
        <Table key={k} title={title(k)} rows={rows} />
      ))}
    </>
  );
}

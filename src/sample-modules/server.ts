import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import * as F from './fixtures.ts';

/**
 * Built-in sample module APIs (`gatehouse serve --sample-modules`, `npm run demo`): one small
 * HTTP server on 127.0.0.1 that answers every sample request of spec 001 and 004, plus
 * GET /msp/about.php, with the documented bodies. It sits behind the real gateway (the
 * default routes point at it), so the spec's curls exercise authentication, authorization,
 * limits and proxying exactly as they would in front of real modules. It reads who the caller
 * is from the identity headers the gateway adds.
 */

export interface SampleModules {
  url: string;
  close(): Promise<void>;
}

const MAX_BODY = 1024 * 1024;

function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function nowZ(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function baseUrl(req: IncomingMessage): string {
  const proto = String(req.headers['x-forwarded-proto'] ?? 'http').split(',')[0]!.trim();
  const host = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? 'localhost').split(',')[0]!.trim();
  return `${proto}://${host}`;
}

function login(req: IncomingMessage): string {
  const u = req.headers['x-gatehouse-user'];
  return typeof u === 'string' && u ? decodeURIComponentSafe(u) : 'unknown';
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY) break;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const json = (res: ServerResponse, body: unknown, status = 200) => send(res, status, 'application/json', JSON.stringify(body, null, 2));
const xml = (res: ServerResponse, body: string, status = 200) => send(res, status, 'text/xml;charset=UTF-8', body);

/** SIMPLE_RETURN as in the VM sample: the request echoed when echo_request=1, then the response text. */
function simpleReturn(req: IncomingMessage, path: string, params: [string, string][], text: string): string {
  const echo = params.some(([k, v]) => k === 'echo_request' && v === '1');
  const request = echo
    ? '  <REQUEST>\n' +
      `    <DATETIME>${nowZ()}</DATETIME>\n` +
      `    <USER_LOGIN>${xmlEscape(login(req))}</USER_LOGIN>\n` +
      `    <RESOURCE>${xmlEscape(baseUrl(req) + path)}</RESOURCE>\n` +
      (params.length
        ? '    <PARAM_LIST>\n' +
          params.map(([k, v]) => `      <PARAM>\n        <KEY>${xmlEscape(k)}</KEY>\n        <VALUE>${xmlEscape(v)}</VALUE>\n      </PARAM>\n`).join('') +
          '    </PARAM_LIST>\n'
        : '') +
      '  </REQUEST>\n'
    : '';
  return (
    '<?xml version="1.0" encoding="UTF-8" ?>\n' +
    `<!DOCTYPE SIMPLE_RETURN SYSTEM "${xmlEscape(baseUrl(req))}/api/2.0/simple_return.dtd">\n` +
    '<SIMPLE_RETURN>\n' +
    request +
    `  <RESPONSE>\n    <DATETIME>${nowZ()}</DATETIME>\n    <TEXT>${xmlEscape(text)}</TEXT>\n  </RESPONSE>\n` +
    '</SIMPLE_RETURN>\n'
  );
}

function aboutXml(req: IncomingMessage): string {
  return (
    '<?xml version="1.0" encoding="UTF-8" ?>\n' +
    `<!DOCTYPE ABOUT SYSTEM "${xmlEscape(baseUrl(req))}/about.dtd">\n` +
    '<ABOUT>\n' +
    '  <API-VERSION MAJOR="1" MINOR="4" />\n' +
    '  <WEB-VERSION>Gatehouse sample modules</WEB-VERSION>\n' +
    '  <SCANNER-VERSION>0</SCANNER-VERSION>\n' +
    '  <VULNSIGS-VERSION>0</VULNSIGS-VERSION>\n' +
    `  <USER-LOGIN>${xmlEscape(login(req))}</USER-LOGIN>\n` +
    '</ABOUT>\n'
  );
}

function wasCount(req: IncomingMessage): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<ServiceResponse\n   xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n' +
    `   xsi:noNamespaceSchemaLocation="${xmlEscape(baseUrl(req))}/qps/xsd/3.0/was/webapp.xsd">\n` +
    '  <responseCode>SUCCESS</responseCode>\n  <count>0</count>\n</ServiceResponse>\n'
  );
}

function amAsset(req: IncomingMessage, id: string): string {
  const i = xmlEscape(id);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<ServiceResponse xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation=\n"${xmlEscape(baseUrl(req))}/qps/xsd/2.0/am/asset.xsd">\n` +
    '<responseCode>SUCCESS</responseCode>\n<count>1</count>\n<data>\n    <Asset>\n' +
    `        <id>${i}</id>\n        <name>My Windows Asset</name>\n` +
    '        <created>2014-02-06T19:16:35Z</created>\n        <modified>2014-02-06T19:16:35Z</modified>\n        <type>HOST</type>\n' +
    '        <tags>\n            <list>\n' +
    '                <TagSimple>\n                    <id>12345</id>\n                    <name>Tag 1</name>\n                </TagSimple>\n' +
    '                <TagSimple>\n                    <id>54321</id>\n                    <name>Tag 2</name>\n                </TagSimple>\n' +
    '            </list>\n        </tags>\n    </Asset>\n</data>\n</ServiceResponse>\n'
  );
}

function easmDate(): string {
  return new Date().toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const u = new URL(req.url ?? '/', 'http://sample');
  const path = u.pathname;
  let m: RegExpExecArray | null;
  if (path === '/msp/about.php') return xml(res, aboutXml(req));
  if ((m = /^\/api\/(\d+\.\d+)\/fo(\/.*)?$/.exec(path))) {
    const params: [string, string][] = [...u.searchParams];
    const body = await readBody(req);
    if (/application\/x-www-form-urlencoded/i.test(String(req.headers['content-type'] ?? '')) && body) params.push(...new URLSearchParams(body));
    const action = params.find(([k]) => k === 'action')?.[1];
    const text =
      /^\/asset\/ip\/?$/.test(m[2] ?? '') && action === 'add'
        ? 'IPs successfully added to Vulnerability Management'
        : `Request received by the Gatehouse sample VM module (${req.method} ${path}).`;
    return xml(res, simpleReturn(req, path, params, text));
  }
  if (/^\/qps\/rest\/\d+\.\d+\/count\/was\/webapp\/?$/.test(path)) return xml(res, wasCount(req));
  if ((m = /^\/qps\/rest\/\d+\.\d+\/get\/am\/asset\/([^/]+)\/?$/.exec(path))) return xml(res, amAsset(req, decodeURIComponentSafe(m[1]!)));
  if (/^\/etm\/api\/rest\/v1\/reports\/list\/?$/.test(path)) return json(res, F.ETM_REPORTS(login(req)));
  if (/^\/easm\/v2\/profile\/[^/]+\/?$/.test(path)) {
    await readBody(req);
    return json(res, { code: '200', status: 'UPDATED', date: easmDate(), message: 'Profile Updated Successfully' });
  }
  if (/^\/cloudview-api\/rest\/v2\/report\/assessment\/create\/?$/.test(path)) return json(res, F.TOTALCLOUD_REPORT);
  if (/^\/pm\/v1\/patchcatalog\/patches\/domains\/?$/.test(path)) return json(res, F.PM_DOMAINS);
  if (/^\/caui\/v1\/config-profiles\/[^/]+\/?$/.test(path)) return json(res, F.CA_CONFIG_PROFILE);
  if (/^\/csapi\/v1\.3\/containers\/?$/.test(path)) return json(res, F.CS_CONTAINERS);
  if (/^\/certview\/v1\/certificates\/?$/.test(path)) return json(res, F.CERTVIEW_CERTIFICATES);
  if (/^\/ot\/v1\/host\/list\/?$/.test(path)) return json(res, F.OT_HOSTS);
  if (/^\/ioc\/events\/scroll\/?$/.test(path)) return json(res, F.EDR_EVENTS);
  const msg = `The Gatehouse sample modules have no sample for ${req.method} ${path}.`;
  if (path.startsWith('/qps/')) {
    return xml(res, `<?xml version="1.0" encoding="UTF-8"?>\n<ServiceResponse>\n  <responseCode>NOT_FOUND</responseCode>\n  <responseErrorDetails><errorMessage>${xmlEscape(msg)}</errorMessage></responseErrorDetails>\n</ServiceResponse>\n`, 404);
  }
  return json(res, { errorCode: 'not_found', errorMessage: msg }, 404);
}

export async function startSampleModules(log: Logger, port = 0): Promise<SampleModules> {
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.warn({ err: { message: (e as Error).message } }, 'sample module failed');
      if (!res.headersSent) json(res, { errorCode: 'internal_error', errorMessage: 'sample module failed' }, 500);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const { port: p } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${p}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The far ends of the streaming test, in their own process so the test process's memory is
 * the gateway's alone: an upstream (echo / download) and a client that uploads or downloads
 * N bytes through the gateway. Commands arrive as JSON lines on stdin; results go to stdout.
 */
import http from 'node:http';
import readline from 'node:readline';
import { startEchoUpstream } from './gateway-upstream.ts';

const up = await startEchoUpstream();
process.stdout.write(JSON.stringify({ upstream: up.url }) + '\n');

async function upload(url: string, token: string, size: number) {
  let clientDoneAt = 0;
  const text = await new Promise<string>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' } }, (r) => {
      let t = '';
      r.setEncoding('utf8').on('data', (c) => (t += c)).on('end', () => resolve(t));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      clientDoneAt = Date.now();
      req.end();
    };
    pump();
  });
  return { arrival: JSON.parse(text), clientDoneAt };
}

async function download(url: string, token: string) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { authorization: `Bearer ${token}` } }, (r) => {
        let bytes = 0;
        let firstByteAt = 0;
        r.on('data', (c: Buffer) => {
          firstByteAt ||= Date.now();
          bytes += c.length;
        }).on('end', () => resolve({ status: r.statusCode, bytes, length: r.headers['content-length'], firstByteAt }));
      })
      .on('error', reject);
  });
}

for await (const line of readline.createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as { op: 'upload' | 'download' | 'exit'; url: string; token: string; size: number };
  if (cmd.op === 'exit') break;
  const result = cmd.op === 'upload' ? await upload(cmd.url, cmd.token, cmd.size) : await download(cmd.url, cmd.token);
  process.stdout.write(JSON.stringify(result) + '\n');
}
await up.close();
process.exit(0); // stdin (the parent's pipe) would keep this process alive

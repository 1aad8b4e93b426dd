/**
 * A real upstream for gateway tests: answers over a real socket with what arrived (method, URL,
 * headers, body size, when the first body byte came), or hangs, holds, or streams a big body.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

export interface Arrival {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  firstByteAt: number | null;
  endAt: number;
}

export interface EchoUpstream {
  url: string;
  arrivals: Arrival[];
  /** Requests held open by a `/hold` path, released by calling this. */
  releaseHeld(): void;
  held(): number;
  close(): Promise<void>;
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const arrivals: Arrival[] = [];
  const held: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.includes('/hang')) return; // never answers
    if (url.includes('/download')) {
      const total = Number(new URL(url, 'http://x').searchParams.get('bytes') ?? 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total), 'x-upstream': 'download' });
      const chunk = Buffer.alloc(64 * 1024, 7);
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    let bytes = 0;
    let firstByteAt: number | null = null;
    req.on('data', (c: Buffer) => {
      if (firstByteAt === null) firstByteAt = Date.now();
      bytes += c.length;
    });
    req.on('end', () => {
      const a: Arrival = { method: req.method!, url, headers: req.headers, bytes, firstByteAt, endAt: Date.now() };
      arrivals.push(a);
      const answer = () => {
        if (res.headersSent || res.destroyed) return;
        const body = JSON.stringify(a);
        res.writeHead(url.includes('/status201') ? 201 : 200, {
          'content-type': 'application/json',
          'x-upstream': 'echo',
          'set-cookie': ['a=1; Path=/', 'b=2; Path=/'],
          'content-length': String(Buffer.byteLength(body)),
        });
        res.end(body);
      };
      if (url.includes('/hold')) {
        held.push(answer);
        setTimeout(answer, 1500).unref(); // never longer than 1.5 s
      } else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    releaseHeld() {
      for (const a of held.splice(0)) {
        try {
          a();
        } catch {
          /* already answered */
        }
      }
    },
    held: () => held.length,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A GATEHOUSE_CONFIG YAML file holding `obj`. */
export function writeConfig(obj: unknown): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-gw-'));
  const f = path.join(dir, 'gatehouse.yaml');
  writeFileSync(f, stringify(obj));
  return f;
}

/**
 * A real HTTP server on 127.0.0.1 that serves files the way the Hugging Face hub does (HEAD with ETag = sha256,
 * X-Repo-Commit; GET with Range), and can cut a response off or lie about a checksum, for download tests.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Served {
  body: Uint8Array;
  /** ETag to announce (default: the body's sha256). */
  etag?: string;
  /** Cut the connection after this many body bytes, on the next `cutTimes` GETs. */
  cutAfter?: number;
  cutTimes?: number;
}

export interface TestServer {
  url: string;
  files: Map<string, Served>;
  requests: { method: string; path: string; range?: string }[];
  close(): Promise<void>;
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function startServer(): Promise<TestServer> {
  const files = new Map<string, Served>();
  const requests: TestServer['requests'] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    requests.push({ method: req.method!, path, range: req.headers.range });
    const f = files.get(path);
    if (!f) {
      res.writeHead(404).end('not found');
      return;
    }
    const etag = f.etag ?? sha256(f.body);
    const common = { etag: `"${etag}"`, 'x-repo-commit': 'c0ffee0000000000000000000000000000000000', 'accept-ranges': 'bytes' };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...common, 'content-length': f.body.byteLength }).end();
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) start = Number(m[1]);
    if (start >= f.body.byteLength) {
      res.writeHead(416).end();
      return;
    }
    const chunk = f.body.subarray(start);
    res.writeHead(m ? 206 : 200, { ...common, 'content-length': chunk.byteLength, ...(m ? { 'content-range': `bytes ${start}-${f.body.byteLength - 1}/${f.body.byteLength}` } : {}) });
    if (f.cutAfter !== undefined && (f.cutTimes ?? 1) > 0) {
      f.cutTimes = (f.cutTimes ?? 1) - 1;
      res.write(chunk.subarray(0, f.cutAfter), () => res.destroy());
      return;
    }
    res.end(chunk);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    files,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

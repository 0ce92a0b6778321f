/**
 * The pages of the Chromium tests: a map of files plus onnxruntime-web's own files under /ort/, served from
 * 127.0.0.1 with cross-origin isolation headers (so onnxruntime-web may use wasm threads).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { REPO } from './fixtures.js';

export type PageFiles = Map<string, { body: Uint8Array | string; type: string; headers?: Record<string, string>; status?: number }>;

/** `onRequest` sees every request path (the hub tests count downloads). */
export async function servePages(files: PageFiles, onRequest?: (path: string) => void): Promise<{ base: string; server: Server }> {
  const ortDir = join(REPO, 'node_modules/onnxruntime-web/dist');
  const server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    onRequest?.(path);
    let f = files.get(path);
    if (!f && path.startsWith('/ort/') && !path.includes('..')) {
      const file = join(ortDir, path.slice(5));
      if (existsSync(file)) f = { body: readFileSync(file), type: extname(file) === '.wasm' ? 'application/wasm' : 'text/javascript' };
    }
    const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
    if (!f) res.writeHead(404, headers).end();
    else res.writeHead(f.status ?? 200, { ...headers, 'content-type': f.type, ...f.headers }).end(f.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

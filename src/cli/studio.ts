/**
 * `tsimm studio`: the teachable-machine page (examples/teachable/) on a local HTTP server. The page is static and
 * uses only the public tsimm/web API; this server just puts its files, the tsimm/web bundle and onnxruntime-web's
 * files at the URLs its import map names (`./tsimm-web.js`, `./ort/...`), with the cross-origin isolation headers
 * that let wasm use threads. `--out DIR` writes the same files for any static host instead.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../weights/tensor.js';
import { int, str, UsageError, type Command } from './args.js';

const FROM_SOURCES = import.meta.url.endsWith('.ts');
/** examples/teachable, two levels up from src/cli and dist/cli alike. */
const PAGE_DIR = fileURLToPath(new URL('../../examples/teachable/', import.meta.url));
const PAGE_FILES = ['index.html', 'app.js'];
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const ISOLATION = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

/** onnxruntime-web's dist folder (an optional peer dependency: the page cannot run without it). */
function ortDir(): string {
  try {
    return dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
  } catch {
    throw new InputError('onnxruntime-web is not installed, and the studio page runs models with it: npm install onnxruntime-web');
  }
}

/** The files of onnxruntime-web the page loads: its WebGPU+wasm ESM entry and the wasm runtime it imports. */
function ortFiles(dir: string): string[] {
  const entry = 'ort.webgpu.min.mjs';
  const text = readFileSync(join(dir, entry), 'utf8');
  const glue = [...new Set(text.match(/ort-wasm-[\w.-]+?\.mjs/g) ?? [])];
  return [entry, ...glue.flatMap((m) => [m, m.replace(/\.mjs$/, '.wasm')])].filter((f) => existsSync(join(dir, f)));
}

/** tsimm-web.js and tsimm-worker.js: dist/web's, or built from the sources into `tmp` when run through tsx. */
async function webBundle(tmp: string): Promise<string> {
  if (!FROM_SOURCES) {
    const built = fileURLToPath(new URL('../web/', import.meta.url));
    if (!existsSync(join(built, 'tsimm-worker.js'))) throw new InputError(`${built} lacks tsimm-web.js/tsimm-worker.js; build them with npm run prepare`);
    return built;
  }
  const { buildWebBundles } = (await import(new URL('../../web/build.ts', import.meta.url).href)) as { buildWebBundles: (outfile: string) => Promise<unknown> };
  await buildWebBundles(join(tmp, 'tsimm-web.js'));
  return tmp;
}

/** URL path → file on disk (or generated body); undefined for anything else. */
function resolveFile(path: string, web: string, ort: string, config: string): { file?: string; body?: string; type: string } | undefined {
  if (path === '/' || path === '/index.html') return { file: join(PAGE_DIR, 'index.html'), type: TYPES['.html']! };
  if (path === '/app.js') return { file: join(PAGE_DIR, 'app.js'), type: TYPES['.js']! };
  if (path === '/tsimm-web.js' || path === '/tsimm-worker.js') return { file: join(web, path.slice(1)), type: TYPES['.js']! };
  if (path === '/studio.json') return { body: config, type: TYPES['.json']! };
  const m = /^\/ort\/([\w.-]+)$/.exec(path);
  const ext = m?.[1]!.slice(m[1]!.lastIndexOf('.')) ?? '';
  if (m && !m[1]!.startsWith('.') && TYPES[ext] && ext !== '.html') return { file: join(ort, m[1]!), type: TYPES[ext]! };
  return undefined;
}

/** `--out DIR`: the static site, written beside DIR and renamed into place (DIR must not exist, or be empty). */
function writeSite(out: string, web: string, ort: string, config: string): string[] {
  const target = resolve(out);
  if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length)) throw new InputError(`--out ${out}: exists and is not an empty folder; pick a new one`);
  const tmp = `${target}.tmp-${process.pid}`;
  const files: string[] = [];
  try {
    mkdirSync(join(tmp, 'ort'), { recursive: true });
    for (const f of PAGE_FILES) copyFileSync(join(PAGE_DIR, f), join(tmp, f));
    for (const f of ['tsimm-web.js', 'tsimm-worker.js']) copyFileSync(join(web, f), join(tmp, f));
    for (const f of ortFiles(ort)) copyFileSync(join(ort, f), join(tmp, 'ort', f));
    if (config !== '{}') writeFileSync(join(tmp, 'studio.json'), config);
    files.push(...readdirSync(tmp, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(tmp, f)).isFile()));
    if (existsSync(target)) rmSync(target, { recursive: true });
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return files.sort();
}

export const studio: Command = {
  usage: '[--port 8090] [--host 127.0.0.1] [--hub-url URL] [--out DIR]',
  summary: 'Teach a classifier in the browser: pick a model, add images or webcam frames per class, fine-tune, predict live, download (serves examples/teachable).',
  options: {
    port: { type: 'string', short: 'p', arg: 'N', help: 'TCP port (default 8090; 0 picks a free one)' },
    host: { type: 'string', arg: 'ADDR', help: 'address to listen on (default 127.0.0.1; a webcam needs localhost or HTTPS)' },
    'hub-url': { type: 'string', arg: 'URL', help: 'where the page fetches pretrained weights (a mirror with the Hugging Face layout, sending CORS headers; default https://huggingface.co)' },
    out: { type: 'string', arg: 'DIR', help: 'write the page and its files to DIR for a static host, and exit (serve it with COOP/COEP headers for wasm threads)' },
  },
  async run(p, v) {
    if (p.length) throw new UsageError(`unexpected argument "${p[0]}"`);
    const hubUrl = str(v, 'hub-url');
    if (hubUrl !== undefined && !/^https?:\/\/[^/]/.test(hubUrl)) throw new UsageError(`--hub-url must be an http(s) URL, got "${hubUrl}"`);
    const port = int(v, 'port', 0) ?? 8090;
    if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
    const host = str(v, 'host') ?? '127.0.0.1';
    const config = JSON.stringify(hubUrl ? { hubUrl: hubUrl.replace(/\/+$/, '') } : {});
    const ort = ortDir();
    const tmp = mkdtempSync(join(tmpdir(), 'tsimm-studio-'));
    const cleanup = () => rmSync(tmp, { recursive: true, force: true });
    let web: string;
    try {
      web = await webBundle(tmp);
      const out = str(v, 'out');
      if (out !== undefined) {
        const files = writeSite(out, web, ort, config);
        cleanup();
        process.stdout.write(`${files.map((f) => join(out, f)).join('\n')}\n`);
        process.stderr.write(`tsimm studio: wrote the page to ${out}; serve that folder over HTTP(S) (COOP/COEP headers let wasm use threads)\n`);
        return 0;
      }
    } catch (e) {
      cleanup();
      throw e;
    }

    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const send = (status: number, body: string | Buffer, type = 'text/plain; charset=utf-8') => {
        res.writeHead(status, { ...ISOLATION, 'content-type': type, 'cache-control': 'no-cache', 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD\n');
      let path: string;
      try {
        path = decodeURIComponent(url.pathname);
      } catch {
        return send(400, 'malformed URL\n');
      }
      const f = resolveFile(path, web, ort, config);
      if (!f) return send(404, `${url.pathname}: not found\n`);
      if (f.body !== undefined) return send(200, f.body, f.type);
      let body: Buffer;
      try {
        body = readFileSync(f.file!);
      } catch {
        return send(404, `${url.pathname}: not found\n`);
      }
      send(200, body, f.type);
    });
    try {
      await new Promise<void>((ok, fail) => {
        server.once('error', fail);
        server.listen(port, host, ok);
      });
    } catch (e) {
      cleanup();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new InputError(`port ${port} is in use; pick another with --port (0 picks a free one)`);
      if (code === 'EADDRNOTAVAIL') throw new InputError(`${host} is not an address of this machine; use 127.0.0.1 or 0.0.0.0`);
      throw e;
    }
    const a = server.address() as AddressInfo;
    const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
    // The line a user opens (and a test waits for), on stdout; the rest is log, on stderr.
    process.stdout.write(`tsimm studio: listening on ${url}\n`);
    process.stderr.write(`tsimm studio: open ${url} in a browser; weights from ${hubUrl ?? 'https://huggingface.co'} (or random init, offline); Ctrl-C stops\n`);
    return new Promise<number>((done) => {
      let stopping = false;
      const stop = (why: string) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`tsimm studio: ${why}: stopped\n`);
        server.close();
        server.closeAllConnections();
        cleanup();
        done(0);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
      // Under npm (npx), a SIGTERM kills npm but is not passed on: stop when the parent is gone, as `serve` does.
      if (process.env['npm_command'] !== undefined) {
        const parent = process.ppid;
        setInterval(() => process.ppid !== parent && stop('npm, the parent process, is gone'), 500).unref();
      }
    });
  },
};

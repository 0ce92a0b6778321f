/**
 * The HTTP server: Open Inference Protocol routes (health, metadata, infer), image classification, the demo
 * page, Prometheus metrics. Liveness answers from the first moment; readiness waits for every model. The main
 * thread only parses and routes: decoding runs in a preprocessing pool, inference in worker threads.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { deflate, gunzip, gzip, inflate } from 'node:zlib';
import type { PreprocessConfig } from '../data/preprocess.js';
import type { PreprocessPool } from '../data/pool.js';
import { softmax, topk as topIndices } from '../math.js';
import type { Batcher } from './batcher.js';
import { demoAsset, demoPage } from './demo.js';
import { ServerMetrics } from './metrics.js';
import { multipartFile } from './multipart.js';
import { HttpError, inferResponse, modelMetadata, parseInferRequest, SERVER_EXTENSIONS, splitBody, type ModelSpec } from './protocol.js';
import { modelConfig, ModelStats, type ServingConfig } from './triton.js';

const zip = { gzip: promisify(gzip), deflate: promisify(deflate) };
const unzip = { gzip: promisify(gunzip), deflate: promisify(inflate) };

export const VERSION = '0.1.0';

/** A model as the server holds it; `batcher` is set once its instances are loaded. */
export interface ServedModel {
  spec: ModelSpec;
  preprocess: PreprocessConfig;
  /** ONNX files by precision for the demo page: the one the instances run, and an fp16 twin of an fp32 model. */
  onnxFiles: Partial<Record<'fp32' | 'fp16' | 'int8', string>>;
  /** Shown in the metadata: architecture, weights, precision. */
  info: Record<string, unknown>;
  /** wnids of ImageNet classes, by index (for /classify). */
  wnids?: string[];
  batcher?: Batcher;
  loadError?: string;
  /** Instances, threads and queue delay, for Triton's model configuration endpoint. */
  serving?: ServingConfig;
}

export interface ServerOptions {
  host: string;
  port: number;
  /** Request bodies over this many bytes get 413. */
  maxBodyBytes: number;
  /** A request (headers and body) must arrive within this many ms. */
  requestTimeoutMs: number;
  accessLog: boolean;
  pool: PreprocessPool;
}

const json = (x: unknown) => Buffer.from(JSON.stringify(x));

export class InferenceServer {
  readonly models = new Map<string, ServedModel>();
  readonly metrics = new ServerMetrics();
  private server?: Server;
  private draining = false;
  private active = 0;
  private decoding = 0;
  private idle: (() => void)[] = [];

  constructor(readonly o: ServerOptions) {}

  get ready(): boolean {
    return !this.draining && this.models.size > 0 && [...this.models.values()].every((m) => m.batcher);
  }

  async listen(): Promise<string> {
    const server = createServer({ requestTimeout: this.o.requestTimeoutMs, headersTimeout: Math.min(this.o.requestTimeoutMs, 60_000), keepAliveTimeout: 5_000 }, (req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /**
   * Graceful stop: readiness turns 503 (load balancers stop routing), no new connections are accepted, queued
   * and running requests finish and get their responses, then the server closes. Resolves false when
   * `deadlineMs` passed first.
   */
  async shutdown(deadlineMs = 30_000): Promise<boolean> {
    this.draining = true;
    const server = this.server;
    if (!server) return true;
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    const drained = (async () => {
      await Promise.all([...this.models.values()].map((m) => m.batcher?.drained()));
      if (this.active) await new Promise<void>((r) => this.idle.push(r));
      server.closeIdleConnections();
      await closed;
    })();
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([drained.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), deadlineMs)))]);
    clearTimeout(timer);
    if (!ok) server.closeAllConnections();
    return ok;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    this.active++;
    let route = 'other';
    let model: string | undefined;
    let status = 500;
    let bytesIn = 0;
    let extra: Record<string, unknown> = {};
    const send = (code: number, body: Buffer | string, headers: Record<string, string> = {}) => {
      status = code;
      if (res.headersSent || res.destroyed) return;
      if (this.draining) headers['connection'] = 'close';
      res.writeHead(code, { 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(body);
    };
    const json200 = (x: unknown) => send(200, json(x), { 'content-type': 'application/json' });
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname.replace(/\/+$/, '') || '/';
      const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
      const method = req.method ?? 'GET';
      const only = (...methods: string[]) => {
        if (!methods.includes(method)) throw new HttpError(405, `${path} takes ${methods.join(' or ')}, not ${method}`, { allow: methods.join(', ') });
      };
      if (parts[0] === 'v2') {
        if (parts.length === 1) {
          route = 'server_metadata';
          only('GET');
          return send(200, json({ name: 'tsimm', version: VERSION, extensions: SERVER_EXTENSIONS }), { 'content-type': 'application/json' });
        }
        if (parts[1] === 'health' && parts.length === 3 && (parts[2] === 'live' || parts[2] === 'ready')) {
          route = `health_${parts[2]}`;
          only('GET');
          if (parts[2] === 'live') return send(200, json({ live: true }), { 'content-type': 'application/json' });
          if (this.ready) return send(200, json({ ready: true }), { 'content-type': 'application/json' });
          throw new HttpError(503, this.draining ? 'the server is shutting down' : `not ready: ${this.loadingNames().join(', ') || 'no model'} still loading`);
        }
        if (parts[1] === 'models' && parts.length === 3 && parts[2] === 'stats' && !this.models.has('stats')) {
          route = 'model_stats';
          only('GET');
          return json200({ model_stats: [...this.models.values()].map((x) => (x.batcher?.stats ?? new ModelStats()).json(x.spec.name, x.spec.version)) });
        }
        if (parts[1] === 'models' && parts.length >= 3) {
          model = parts[2]!;
          let rest = parts.slice(3);
          const m = this.models.get(model);
          if (!m) throw new HttpError(404, `no model "${model}" is served here; models: ${[...this.models.keys()].join(', ')}`);
          if (rest[0] === 'versions') {
            if (rest[1] !== m.spec.version) throw new HttpError(404, `model "${model}" has no version ${JSON.stringify(rest[1] ?? '')}; its version is ${m.spec.version}`);
            rest = rest.slice(2);
          }
          const action = rest.join('/');
          if (action === '') {
            route = 'model_metadata';
            only('GET');
            return send(200, json(modelMetadata(m.spec, { ...m.info, preprocess: m.preprocess, ready: !!m.batcher })), { 'content-type': 'application/json' });
          }
          if (action === 'config') {
            route = 'model_config';
            only('GET');
            return json200(modelConfig(m.spec, m.serving ?? { maxQueueDelayMs: m.batcher?.o.maxQueueDelayMs ?? 0, instances: 1, threads: 1, kind: 'KIND_CPU' }));
          }
          if (action === 'stats') {
            route = 'model_stats';
            only('GET');
            return json200({ model_stats: [(m.batcher?.stats ?? new ModelStats()).json(m.spec.name, m.spec.version)] });
          }
          if (action === 'ready') {
            route = 'model_ready';
            only('GET');
            if (m.batcher) return send(200, json({ name: model, ready: true }), { 'content-type': 'application/json' });
            throw new HttpError(503, m.loadError ? `model "${model}" failed to load: ${m.loadError}` : `model "${model}" is loading`);
          }
          if (action === 'infer' || action === 'classify') {
            route = action;
            only('POST');
            const batcher = this.readyBatcher(m);
            const body = await this.readBody(req);
            bytesIn = body.length;
            const r = action === 'infer' ? await this.infer(m, batcher, req, res, body) : await this.classify(m, batcher, req, res, body, url);
            extra = r.log;
            // Accept-Encoding as Triton honours it: the whole body compressed, Inference-Header-Content-Length
            // still the uncompressed JSON header's length (clients decompress, then split).
            const encoding = acceptedEncoding(req.headers['accept-encoding']);
            if (encoding) return send(200, await zip[encoding](r.body), { ...r.headers, 'content-encoding': encoding, vary: 'accept-encoding' });
            return send(200, r.body, { ...r.headers, vary: 'accept-encoding' });
          }
        }
        throw new HttpError(404, `no such endpoint: ${method} ${path}`);
      }
      if (path === '/metrics') {
        route = 'metrics';
        only('GET');
        return send(200, this.metrics.render(), { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      }
      if (path === '/favicon.ico') {
        // The demo page declares no icon; a browser that asks anyway gets an empty answer, not a 404.
        route = 'favicon';
        only('GET');
        return send(204, '', { 'cache-control': 'max-age=86400' });
      }
      if (path === '/' || path === '/index.html') {
        route = 'demo';
        only('GET');
        return send(200, demoPage([...this.models.values()].map((x) => x.spec.name)), { 'content-type': 'text/html; charset=utf-8', ...ISOLATION });
      }
      if (parts[0] === 'demo' || parts[0] === 'onnx') {
        route = 'demo_asset';
        only('GET');
        const a = await demoAsset(parts, this.models);
        if (a) return send(200, a.body, { 'content-type': a.type, ...ISOLATION, 'cache-control': 'no-cache' });
      }
      throw new HttpError(404, `no such endpoint: ${method} ${path}; the API is under /v2 (Open Inference Protocol), the demo page at /`);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, `internal error: ${(e as Error).message.split('\n')[0]}`);
      // The batcher counts what it refuses or fails (REJECTED, CANCELED, BACKEND); here: bad requests, internal errors.
      const served = model ? this.models.get(model) : undefined;
      if (served && (route === 'infer' || route === 'classify') && (err.status === 400 || !(e instanceof HttpError))) this.metrics.failure.inc({ model: served.spec.name, version: served.spec.version, reason: 'OTHER' });
      // A body not read yet (unknown model or route, wrong method, not ready) is read and dropped first, up to
      // --max-body, so a client still sending gets this answer, not a reset; past the limit the connection closes.
      const headers: Record<string, string> = { 'content-type': 'application/json', ...err.headers };
      if (!req.readableEnded && !(await this.discard(req))) headers['connection'] = 'close';
      send(err.status, json({ error: err.message }), headers);
    } finally {
      this.metrics.http.inc({ route, code: String(status) });
      if (this.o.accessLog) {
        process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), method: req.method, path: req.url, status, ms: +(performance.now() - t0).toFixed(2), bytes_in: bytesIn, remote: req.socket.remoteAddress, ...(model ? { model } : {}), ...extra })}\n`);
      }
      this.active--;
      if (!this.active) for (const w of this.idle.splice(0)) w();
    }
  }

  private loadingNames(): string[] {
    return [...this.models.values()].filter((m) => !m.batcher).map((m) => m.spec.name);
  }

  private readyBatcher(m: ServedModel): Batcher {
    if (this.draining) throw new HttpError(503, 'the server is shutting down; retry on another replica', { 'retry-after': '1' });
    if (!m.batcher) throw new HttpError(503, m.loadError ? `model "${m.spec.name}" failed to load: ${m.loadError}` : `model "${m.spec.name}" is still loading; retry when /v2/health/ready is 200`, { 'retry-after': '1' });
    return m.batcher;
  }

  /**
   * The body, refused with 413 past the limit. The rest of an oversized body is read and dropped before the
   * answer, so the client (still sending) sees the 413 rather than a reset; --request-timeout bounds that.
   */
  private async readBody(req: IncomingMessage): Promise<Buffer> {
    const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'deflate') {
      throw new HttpError(415, `Content-Encoding ${JSON.stringify(encoding.slice(0, 40))} is not supported; send gzip, deflate or an uncompressed body`, { 'accept-encoding': 'gzip, deflate' });
    }
    const raw = await this.readRaw(req);
    if (encoding === 'identity') return raw;
    try {
      return await unzip[encoding](raw, { maxOutputLength: this.o.maxBodyBytes });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new HttpError(413, `the request body decompresses to over the ${this.o.maxBodyBytes} byte limit (--max-body)`);
      throw new HttpError(400, `the request body is not valid ${encoding} data (Content-Encoding: ${encoding}): ${(e as Error).message.split('\n')[0]}`);
    }
  }

  /**
   * Read and drop a body nobody will use, before an error answer. True once it ended within --max-body; false
   * past the limit (the caller closes the connection) or when the client went away.
   */
  private discard(req: IncomingMessage): Promise<boolean> {
    const limit = this.o.maxBodyBytes;
    // A client already gone (mid-body) sends nothing more: no 'end' or 'close' will come to wait for.
    if (req.destroyed || req.socket.destroyed || Number(req.headers['content-length']) > limit) return Promise.resolve(false);
    return new Promise((resolve) => {
      let n = 0;
      const done = (ok: boolean) => {
        req.off('data', onData);
        resolve(ok);
      };
      const onData = (c: Buffer) => {
        n += c.length;
        if (n > limit) {
          req.pause();
          done(false);
        }
      };
      req.on('data', onData);
      req.once('end', () => done(true));
      req.once('close', () => done(req.complete));
      req.once('error', () => done(false));
      req.resume();
    });
  }

  private readRaw(req: IncomingMessage): Promise<Buffer> {
    const limit = this.o.maxBodyBytes;
    const tooBig = () => new HttpError(413, `the request body is over the ${limit} byte limit (--max-body); send a smaller image or tensor`);
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let n = 0;
      let over = Number(req.headers['content-length']) > limit;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n > limit) over = true;
        if (!over) chunks.push(c);
        else chunks.length = 0;
      });
      req.on('end', () => (over ? reject(tooBig()) : resolve(Buffer.concat(chunks, n))));
      req.on('error', (e) => reject(new HttpError(400, `the request body could not be read: ${e.message}`)));
      // A client gone mid-body: settle, so the request stops counting as active (a drain waits for those).
      req.on('close', () => req.complete || reject(new HttpError(400, 'the client closed the connection before the body ended')));
    });
  }

  private async infer(m: ServedModel, batcher: Batcher, req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const header = req.headers['inference-header-content-length'];
    const { json: request, binary } = splitBody(body, Array.isArray(header) ? header[0] : header);
    const r = parseInferRequest(request, binary, m.spec);
    const out = await batcher.submit(r.data, r.n, () => res.destroyed || req.socket.destroyed, r.timeoutMs);
    const resp = inferResponse(m.spec, r, out.logits);
    return { ...resp, log: { batch: out.batch, queue_ms: +out.queueMs.toFixed(2), compute_ms: +out.computeMs.toFixed(2) } };
  }

  /** One image (raw body or a form upload) through the model's own preprocessing, top-k with labels. */
  private async classify(m: ServedModel, batcher: Batcher, req: IncomingMessage, res: ServerResponse, body: Buffer, url: URL) {
    const k = url.searchParams.get('topk') ?? '5';
    const topk = Number(k);
    if (!Number.isInteger(topk) || topk < 1) throw new HttpError(400, `topk must be a positive integer, got ${JSON.stringify(k)}`);
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    const image = type.startsWith('multipart/form-data') ? multipartFile(body, type) : body;
    if (!image.length) throw new HttpError(400, 'the request body is empty; POST the image bytes (JPEG, PNG, WebP, ...) or a form with a file field');
    if (type.startsWith('application/json')) throw new HttpError(400, `/classify takes image bytes, not JSON; POST tensors to /v2/models/${m.spec.name}/infer`);
    if (this.decoding + batcher.pending >= batcher.o.maxQueue) {
      this.metrics.failure.inc({ model: m.spec.name, version: m.spec.version, reason: 'REJECTED' });
      throw new HttpError(503, `${m.spec.name}'s queue is full (${batcher.o.maxQueue} requests); retry later`, { 'retry-after': '1' });
    }
    const t0 = performance.now();
    let x: Float32Array;
    this.decoding++;
    try {
      x = await this.o.pool.run(new Uint8Array(image.buffer, image.byteOffset, image.length), m.preprocess);
    } catch (e) {
      throw new HttpError(400, (e as Error).message.split('\n')[0]!.replace(/^image /, 'the request body '));
    } finally {
      this.decoding--;
    }
    const decodeMs = performance.now() - t0;
    const out = await batcher.submit(x, 1, () => res.destroyed || req.socket.destroyed);
    const probs = softmax(out.logits);
    const predictions = topIndices(probs, Math.min(topk, probs.length)).map((index) => ({
      index,
      label: m.spec.labels[index] ?? `class ${index}`,
      ...(m.wnids ? { wnid: m.wnids[index] } : {}),
      prob: probs[index]!,
      logit: out.logits[index]!,
    }));
    const timing = { decode_ms: +decodeMs.toFixed(2), queue_ms: +out.queueMs.toFixed(2), compute_ms: +out.computeMs.toFixed(2), total_ms: +(performance.now() - t0).toFixed(2) };
    return { body: json({ model_name: m.spec.name, model_version: m.spec.version, predictions, batch: out.batch, timing }), headers: { 'content-type': 'application/json' }, log: { batch: out.batch, ...timing } };
  }
}

/**
 * The response encoding an Accept-Encoding header asks for, as Triton chooses it: among gzip, deflate and
 * identity, the one of highest q (the first of equals); undefined for identity or none.
 */
export function acceptedEncoding(header: string | undefined): 'gzip' | 'deflate' | undefined {
  if (!header) return undefined;
  let best: string | undefined;
  let weight = 0;
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find(Boolean);
    const w = q ? Number(q[1]) : 1;
    if ((name === 'gzip' || name === 'deflate' || name === 'identity') && w > weight) {
      best = name;
      weight = w;
    }
  }
  return best === 'gzip' || best === 'deflate' ? best : undefined;
}

/** Cross-origin isolation, so onnxruntime-web may use wasm threads on the demo page. */
const ISOLATION = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

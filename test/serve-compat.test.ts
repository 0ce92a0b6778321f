/**
 * `tsimm serve` against stock Triton clients, over real HTTP on 127.0.0.1, with requests shaped as
 * triton-inference-server/client and perf_analyzer build them (read from their source):
 * - perf_analyzer's start-up and measurement: GET /v2 (extensions), the model metadata, GET .../config, then
 *   GET .../stats around binary infer requests whose FP32 data are random bytes (NaN and infinities included);
 * - a large body on every error path is read before the answer (no EPIPE on the client);
 * - tritonclient's request_compression_algorithm (Content-Encoding: gzip / deflate of the whole body, its
 *   Inference-Header-Content-Length the uncompressed JSON's) and response_compression_algorithm (Accept-Encoding);
 * - the classification parameter at request and output level;
 * - the batcher never holds a lone request for --max-queue-delay;
 * - `npx tsimm serve` stops when npx is sent SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deflateSync, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { createModel, type Model } from '../src/model.js';
import { REPO } from './helpers/fixtures.js';
import { startServe, type ServeProcess } from './helpers/serve.js';
import { describeOrSkip } from './helpers/skip.js';

const MODEL = 'regnetx_002';
const SHAPE = [3, 32, 32] as const;
const IMAGE = SHAPE[0] * SHAPE[1] * SHAPE[2];

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTP request with node:http, the body written in 64 KiB chunks as a client streams it; no decoding. */
function raw(url: string, o: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: o.method ?? (o.body ? 'POST' : 'GET'), headers: { ...(o.body ? { 'content-length': String(o.body.length) } : {}), ...o.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (o.body) for (let i = 0; i < o.body.length; i += 65536) req.write(o.body.subarray(i, i + 65536));
    req.end();
  });
}
const getJson = async (url: string) => {
  const r = await raw(url);
  return { status: r.status, json: JSON.parse(r.body.toString()) as Record<string, unknown> };
};

/** A JSON error body: one printable line (never the request's binary echoed back). */
function oneLine(r: Raw): string {
  const msg = (JSON.parse(r.body.toString()) as { error: string }).error;
  assert.match(msg, /^[\x20-\x7e\u00a0-\uffff]+$/u, `error is one printable line: ${JSON.stringify(msg)}`);
  return msg;
}

/** perf_analyzer's default input: random bytes (C rand() per byte), so FP32 values include NaN and ±Inf. */
function randomBytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    b[i] = s >>> 16;
  }
  return b;
}

/** The binary infer request of Triton's C++ / Python HTTP clients: JSON header, then the tensor bytes. */
function binaryRequest(data: Buffer, n: number, extra: Record<string, unknown> = {}) {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [n, ...SHAPE], datatype: 'FP32', parameters: { binary_data_size: data.length } }], ...extra }));
  return { body: Buffer.concat([header, data]), headers: { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' } };
}

function splitResponse(r: Raw) {
  const n = Number(r.headers['inference-header-content-length']);
  const json = JSON.parse(r.body.subarray(0, n).toString()) as { outputs: { name: string; datatype: string; shape: number[]; parameters?: { binary_data_size: number } }[] };
  const bin = r.body.subarray(n);
  return { json, logits: new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length)) };
}

const dir = mkdtempSync(join(tmpdir(), 'tsimm-serve-compat-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('tsimm serve: Triton clients (perf_analyzer, tritonclient) unmodified', () => {
  let s: ServeProcess;
  let base: string;
  let model: Model;

  before(async () => {
    // A 1 s queue delay: a lone request must still run at once (nothing else is queued or running).
    s = await startServe([MODEL, '--random-weights', '--size', String(SHAPE[1]), '--max-body', '8', '--max-queue-delay', '1000']);
    base = s.url;
    model = createModel(MODEL, { inputSize: SHAPE[1] }).initWeights();
  });
  after(async () => {
    assert.equal(await s.stop(), 0);
  });

  it("answers perf_analyzer's start-up: extensions, metadata and the model configuration as Triton writes it", async () => {
    const meta = await getJson(`${base}/v2`);
    const ext = meta.json['extensions'] as string[];
    for (const e of ['statistics', 'model_configuration', 'binary_tensor_data', 'classification']) assert.ok(ext.includes(e), e);
    const md = await getJson(`${base}/v2/models/${MODEL}`);
    assert.equal(md.json['name'], MODEL);
    for (const path of [`/v2/models/${MODEL}/config`, `/v2/models/${MODEL}/versions/1/config`]) {
      const { status, json: c } = await getJson(base + path);
      assert.equal(status, 200, path);
      // What ModelParser::InitTriton reads, with the types it reads them as.
      assert.equal(c['name'], MODEL);
      assert.equal(c['max_batch_size'], 8);
      assert.equal(c['platform'], 'onnxruntime_onnx');
      assert.deepEqual(c['model_transaction_policy'], { decoupled: false });
      assert.deepEqual(c['response_cache'], { enable: false });
      assert.ok(c['dynamic_batching'] && !('sequence_batching' in c), 'the dynamic scheduler');
      assert.equal((c['dynamic_batching'] as { max_queue_delay_microseconds: number }).max_queue_delay_microseconds, 1_000_000);
      const [input] = c['input'] as { name: string; data_type: string; dims: number[]; is_shape_tensor: boolean; optional: boolean }[];
      assert.deepEqual([input!.name, input!.data_type, input!.dims, input!.is_shape_tensor, input!.optional], ['input', 'TYPE_FP32', [...SHAPE], false, false]);
      const [output] = c['output'] as { name: string; dims: number[]; is_shape_tensor: boolean }[];
      assert.deepEqual([output!.name, output!.dims, output!.is_shape_tensor], ['logits', [1000], false]);
      const [group] = c['instance_group'] as { kind: string; count: number }[];
      assert.deepEqual([group!.kind, group!.count], ['KIND_CPU', 1]);
    }
    const wrong = await raw(`${base}/v2/models/${MODEL}/versions/7/config`);
    assert.equal(wrong.status, 404);
    assert.match(oneLine(wrong), /no version "7"/);
  });

  it("runs perf_analyzer's random-byte FP32 requests (NaN in, NaN out) and counts them in Triton's statistics", async () => {
    type Stat = { name: string; version: string; inference_count: number; execution_count: number; inference_stats: Record<string, { count: number; ns: number }>; batch_stats: { batch_size: number; compute_infer: { count: number } }[] };
    const stats = async (path: string) => {
      const r = await getJson(base + path);
      assert.equal(r.status, 200, path);
      const list = r.json['model_stats'] as Stat[];
      const st = list.find((x) => x.name === MODEL && x.version === '1')!;
      // ParseStatistics: GetUint64 on every count and ns.
      for (const k of ['success', 'queue', 'compute_input', 'compute_infer', 'compute_output', 'cache_hit', 'cache_miss']) {
        for (const f of ['count', 'ns'] as const) assert.ok(Number.isSafeInteger(st.inference_stats[k]![f]) && st.inference_stats[k]![f] >= 0, `${k}.${f}`);
      }
      return st;
    };
    const s0 = await stats(`/v2/models/${MODEL}/stats`);
    const N = 6;
    for (let i = 0; i < N; i++) {
      const data = randomBytes(IMAGE * 4, i + 1);
      const x = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
      assert.ok(x.some((v) => Number.isNaN(v)) || x.some((v) => !Number.isFinite(v)), 'random bytes hold non-finite floats');
      // Both forms perf_analyzer's client sends: requested outputs with binary_data, or none and binary_data_output.
      const req = binaryRequest(data, 1, i % 2 ? { outputs: [{ name: 'logits', parameters: { binary_data: true } }] } : { parameters: { binary_data_output: true } });
      const r = await raw(`${base}/v2/models/${MODEL}/infer`, { body: req.body, headers: req.headers });
      assert.equal(r.status, 200, r.body.toString().slice(0, 200));
      const { logits } = splitResponse(r);
      assert.equal(logits.length, 1000);
      const want = (await model.run({ shape: [1, ...SHAPE], data: x })).logits.data;
      assert.ok(logits.some((v) => Number.isNaN(v)), 'NaN in, NaN out');
      for (let j = 0; j < 1000; j++) assert.ok(Object.is(Number.isNaN(logits[j]!), Number.isNaN(want[j]!)), `NaN where ONNX Runtime in this process gives NaN (logit ${j})`);
    }
    const s1 = await stats(`/v2/models/${MODEL}/versions/1/stats`);
    const all = await stats('/v2/models/stats');
    assert.ok(all.inference_count >= s1.inference_count);
    const d = (k: string, f: 'count' | 'ns' = 'count') => s1.inference_stats[k]![f] - s0.inference_stats[k]![f];
    assert.equal(d('success'), N);
    assert.equal(d('queue'), N, 'perf_analyzer finds the version by the queue count that moved');
    assert.equal(d('compute_infer'), N);
    assert.equal(s1.inference_count - s0.inference_count, N);
    assert.equal(s1.execution_count - s0.execution_count, N, 'sequential requests run one per execution');
    assert.ok(d('compute_infer', 'ns') > 0);
    assert.ok(d('success', 'ns') >= d('queue', 'ns') + d('compute_infer', 'ns'), 'success time covers queue and compute');
    // A lone request is never held for the 1 s --max-queue-delay.
    assert.ok(d('queue', 'ns') / N < 0.5e9, `mean queue time ${d('queue', 'ns') / N / 1e6} ms with nothing else queued`);
    assert.equal(s1.batch_stats.find((b) => b.batch_size === 1)!.compute_infer.count, s1.execution_count);
  });

  it('names the position of a bad element in a JSON tensor', async () => {
    const data = new Array(IMAGE).fill(0);
    data[1 * 32 + 5] = 300;
    const r = await raw(`${base}/v2/models/${MODEL}/infer`, { body: Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, ...SHAPE], datatype: 'UINT8', data }] })) });
    assert.equal(r.status, 400);
    assert.match(oneLine(r), /element 37 \(index \[0, 0, 1, 5\]\) is 300; UINT8 takes integers 0-255/);
  });

  it('reads a 2 MB body to the end before answering on every error path (no EPIPE)', async () => {
    const big = randomBytes(2 * 1024 * 1024, 9);
    const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, ...SHAPE], datatype: 'FP32', data: Array.from({ length: 2 ** 18 }, () => 0.5) }] }));
    assert.ok(json.length > 1e6);
    const cases: [string, string, Buffer, number][] = [
      ['POST', `/v2/models/nosuchmodel/infer`, json, 404],
      ['POST', `/v2/models/nosuchmodel/classify`, big, 404],
      ['POST', `/v2/models/${MODEL}/versions/3/infer`, json, 404],
      ['POST', `/v2/models/${MODEL}/nosuchaction`, json, 404],
      ['POST', `/v2/nosuchroute`, big, 404],
      ['POST', `/nosuchroute`, big, 404],
      ['PUT', `/v2/models/${MODEL}/infer`, json, 405],
      ['POST', `/v2/models/${MODEL}/config`, json, 405],
      ['POST', `/v2/health/ready`, big, 405],
      ['POST', `/v2/models/${MODEL}/infer`, json.subarray(0, json.length - 10), 400],
      ['POST', `/v2/models/${MODEL}/infer`, big, 400],
    ];
    for (const [method, path, body, status] of cases) {
      for (let rep = 0; rep < 2; rep++) {
        const r = await raw(base + path, { method, body, headers: { 'content-type': 'application/json' } });
        assert.equal(r.status, status, `${method} ${path}`);
        oneLine(r);
      }
    }
  });

  it('answers an error only once the body has arrived, and keeps the connection for the next request', async () => {
    const { port } = new URL(base);
    const body = Buffer.alloc(2 * 1024 * 1024, 0x20);
    const sock = connect(Number(port), '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    sock.write(`POST /v2/models/nosuchmodel/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    sock.write(body.subarray(0, body.length / 2));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(got, '', 'no answer while the client is still sending');
    sock.write(body.subarray(body.length / 2));
    for (let i = 0; i < 100 && !got.includes('"error"'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(got, /^HTTP\/1\.1 404 /);
    assert.doesNotMatch(got, /connection: close/i);
    got = '';
    sock.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n');
    for (let i = 0; i < 100 && !got.includes('live'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(got, /^HTTP\/1\.1 200 /);
    sock.destroy();
  });

  it("accepts tritonclient's gzip and deflate requests and answers in the encoding Accept-Encoding asks for", async () => {
    const data = randomBytes(2 * IMAGE * 4, 42);
    const f = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)).map((v) => (Number.isFinite(v) ? Math.max(-3, Math.min(3, v)) : 0));
    const req = binaryRequest(Buffer.from(f.buffer), 2, { outputs: [{ name: 'logits', parameters: { binary_data: true } }] });
    const plain = await raw(`${base}/v2/models/${MODEL}/infer`, { body: req.body, headers: req.headers });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    const want = splitResponse(plain).logits;
    for (const [name, pack, unpack] of [['gzip', gzipSync, gunzipSync], ['deflate', deflateSync, inflateSync]] as const) {
      // Python tritonclient: gzip.compress / zlib.compress of the whole body; the header length stays the JSON's.
      const r = await raw(`${base}/v2/models/${MODEL}/infer`, { body: pack(req.body), headers: { ...req.headers, 'content-encoding': name, 'accept-encoding': name } });
      assert.equal(r.status, 200, name);
      assert.equal(r.headers['content-encoding'], name);
      const body = unpack(r.body);
      assert.deepEqual(splitResponse({ ...r, body }).logits, want, `${name} in and out: the same logits`);
    }
    // Triton's choice among several: the highest q.
    const q = await raw(`${base}/v2/models/${MODEL}/infer`, { body: req.body, headers: { ...req.headers, 'accept-encoding': 'deflate;q=0.5, gzip;q=0.9, br' } });
    assert.equal(q.headers['content-encoding'], 'gzip');
    assert.deepEqual(splitResponse({ ...q, body: gunzipSync(q.body) }).logits, want);
    const id = await raw(`${base}/v2/models/${MODEL}/infer`, { body: req.body, headers: { ...req.headers, 'accept-encoding': 'identity, gzip;q=0.5' } });
    assert.equal(id.headers['content-encoding'], undefined);
  });

  it('refuses bad or unknown encodings in one printable line, never echoing binary', async () => {
    const req = binaryRequest(Buffer.alloc(IMAGE * 4), 1);
    const notGzip = await raw(`${base}/v2/models/${MODEL}/infer`, { body: req.body, headers: { ...req.headers, 'content-encoding': 'gzip' } });
    assert.equal(notGzip.status, 400);
    assert.match(oneLine(notGzip), /not valid gzip data/);
    const br = await raw(`${base}/v2/models/${MODEL}/infer`, { body: req.body, headers: { ...req.headers, 'content-encoding': 'br' } });
    assert.equal(br.status, 415);
    assert.equal(br.headers['accept-encoding'], 'gzip, deflate');
    oneLine(br);
    // A compressed body sent without its Content-Encoding: parsed as JSON, refused without the bytes in the message.
    const undeclared = await raw(`${base}/v2/models/${MODEL}/infer`, { body: gzipSync(req.body), headers: { 'content-type': 'application/json' } });
    assert.equal(undeclared.status, 400);
    assert.match(oneLine(undeclared), /not valid JSON.*Content-Encoding: gzip/);
    const binaryJson = await raw(`${base}/v2/models/${MODEL}/infer`, { body: Buffer.concat([Buffer.from('{"inputs": '), randomBytes(500, 3)]) });
    assert.equal(binaryJson.status, 400);
    oneLine(binaryJson);
    // A small body that inflates past --max-body (8 MB): 413, not the memory.
    const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024));
    const r = await raw(`${base}/v2/models/${MODEL}/infer`, { body: bomb, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    assert.equal(r.status, 413);
    assert.match(oneLine(r), /decompresses to over/);
  });

  it('honours "classification" at request level as at output level (Triton has only the output form)', async () => {
    const x = new Float32Array(2 * IMAGE).map((_, i) => Math.sin(i * 0.01));
    const body = (extra: Record<string, unknown>) => Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [2, ...SHAPE], datatype: 'FP32', data: Array.from(x) }], ...extra }));
    const outLevel = await raw(`${base}/v2/models/${MODEL}/infer`, { body: body({ outputs: [{ name: 'logits', parameters: { classification: 3 } }] }) });
    const reqLevel = await raw(`${base}/v2/models/${MODEL}/infer`, { body: body({ parameters: { classification: 3 } }) });
    const plain = await raw(`${base}/v2/models/${MODEL}/infer`, { body: body({}) });
    const o = JSON.parse(outLevel.body.toString()).outputs[0];
    const r = JSON.parse(reqLevel.body.toString()).outputs[0];
    assert.deepEqual([o.datatype, o.shape], ['BYTES', [2, 3]]);
    assert.deepEqual(r, o);
    const logits = JSON.parse(plain.body.toString()).outputs[0].data as number[];
    const top = (b: number) => logits.slice(b * 1000, (b + 1) * 1000).map((v, i) => [v, i] as const).sort((a, c) => c[0] - a[0])[0]![1];
    assert.equal(Number((r.data[0] as string).split(':')[1]), top(0));
    assert.equal(Number((r.data[3] as string).split(':')[1]), top(1));
    // The output's own parameter wins over the request's.
    const both = await raw(`${base}/v2/models/${MODEL}/infer`, { body: body({ parameters: { classification: 5 }, outputs: [{ name: 'logits', parameters: { classification: 2 } }] }) });
    assert.deepEqual(JSON.parse(both.body.toString()).outputs[0].shape, [2, 2]);
    const bad = await raw(`${base}/v2/models/${MODEL}/infer`, { body: body({ parameters: { classification: 0 } }) });
    assert.equal(bad.status, 400);
    assert.match(oneLine(bad), /request's "classification" must be a positive integer/);
  });

  it('answers the favicon request with no content and declares no icon on the demo page', async () => {
    assert.equal((await raw(`${base}/favicon.ico`)).status, 204);
    assert.match((await raw(`${base}/`)).body.toString(), /<link rel="icon" href="data:,">/);
  });
});

describe('tsimm serve --help', () => {
  it("states --max-pixels' default as the other commands do: PIL's DecompressionBombError threshold", async () => {
    const { runCli } = await import('./helpers/cli.js');
    const line = (cmd: string) => runCli(dir, [cmd, '--help']).stdout.split('\n').find((l) => l.includes('--max-pixels'))!;
    const serve = line('serve');
    assert.match(serve, /default 178956970: where PIL raises DecompressionBombError, 2 × its MAX_IMAGE_PIXELS/);
    assert.equal(serve, line('predict'));
    assert.doesNotMatch(serve, /89478485/);
    assert.match(runCli(dir, ['serve', '--help']).stdout, /--max-queue-delay MS +.*default 0 ms/);
  });
});

// npx runs the built package (dist/), as a user's install has it: run `npm run prepare` after changing src/.
const NO_DIST = existsSync(join(REPO, 'dist/cli/main.js')) ? false : 'dist/ is not built (npm run prepare)';
describeOrSkip('tsimm serve under npx', NO_DIST, () => {
  it('stops (drains, exits, frees the port) when npx gets SIGTERM', async () => {
    // A project with tsimm installed, as a user has it: node_modules/tsimm and its bin link.
    const proj = join(dir, 'project');
    mkdirSync(join(proj, 'node_modules', '.bin'), { recursive: true });
    writeFileSync(join(proj, 'package.json'), '{"name": "user-project", "version": "1.0.0", "private": true}\n');
    symlinkSync(REPO, join(proj, 'node_modules', 'tsimm'));
    chmodSync(join(REPO, 'dist/cli/main.js'), 0o755);
    symlinkSync('../tsimm/dist/cli/main.js', join(proj, 'node_modules', '.bin', 'tsimm'));
    const npx = spawn('npx', ['--no-install', 'tsimm', 'serve', MODEL, '--random-weights', '--size', '32', '--port', '0'], { cwd: proj, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    npx.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    npx.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready in 120 s:\n${err}`)), 120_000);
      npx.stdout!.on('data', () => {
        const m = /ready: (http:\/\/[^\s/]+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      npx.on('exit', (code) => reject(new Error(`npx exited with ${code}:\n${err}`)));
    });
    assert.equal((await raw(`${url}/v2/health/live`)).status, 200);
    npx.kill('SIGTERM');
    await new Promise((r) => npx.once('exit', r));
    // The server (npx's grandchild) must let go of the port within a few seconds, not listen on as an orphan.
    let refused = false;
    for (let i = 0; i < 40 && !refused; i++) {
      await new Promise((r) => setTimeout(r, 250));
      refused = await raw(`${url}/v2/health/live`).then(
        () => false,
        (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED',
      );
    }
    assert.ok(refused, `the server still answers at ${url} 10 s after npx got SIGTERM`);
    assert.match(err, /npm, the parent process, is gone: draining/);
  });
});

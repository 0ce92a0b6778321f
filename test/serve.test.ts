/**
 * `tsimm serve` over real HTTP on 127.0.0.1: the Open Inference Protocol (JSON and Triton's binary and
 * classification extensions) against the same model run in this process, /classify against `classify()`,
 * dynamic batching, the bounded queue, cancellation, queue timeouts, bad input 100 times over, graceful SIGTERM,
 * and the demo page in Chromium.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createModel, type Model } from '../src/model.js';
import { classify } from '../src/tasks/classify.js';
import { REPO } from './helpers/fixtures.js';
import { startServe, type ServeProcess } from './helpers/serve.js';
import { CHROMIUM, FLAGS, NO_CHROMIUM, NO_SWIFTSHADER, SWIFTSHADER_ENV, WEBGPU_FLAGS } from './helpers/chromium.js';
import { describeOrSkip } from './helpers/skip.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-serve-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic values in [-2, 2). */
function values(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = (s / 2 ** 32) * 4 - 2;
  }
  return x;
}

async function post(url: string, body: Buffer | string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}
const getJson = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
};

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m / scale;
}

/** A Prometheus sample's value (0 when absent). */
async function metric(base: string, line: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const row = text.split('\n').find((l) => l.startsWith(`${line} `));
  return row ? Number(row.slice(line.length + 1)) : 0;
}

/** Triton's binary request: JSON header, then the raw tensor, its length in Inference-Header-Content-Length. */
function binaryRequest(header: unknown, tensor: Float32Array) {
  const h = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([h, Buffer.from(tensor.buffer, tensor.byteOffset, tensor.byteLength)]), headers: { 'inference-header-content-length': String(h.length), 'content-type': 'application/octet-stream' } };
}

function splitBinaryResponse(r: { headers: Headers; body: Buffer }) {
  const n = Number(r.headers.get('inference-header-content-length'));
  return { json: JSON.parse(r.body.subarray(0, n).toString()) as { outputs: { name: string; datatype: string; shape: number[]; parameters?: { binary_data_size: number } }[] }, binary: r.body.subarray(n) };
}

describe('tsimm serve: the Open Inference Protocol', () => {
  let s: ServeProcess;
  let base: string;
  let model: Model;
  const png = join(dir, 'photo.png');

  before(async () => {
    // resnet18 on deterministic random weights (seed 0, as initWeights) and the Fashion-MNIST example's real ones.
    s = await startServe(['resnet18', 'regnetx_002', '--random-weights', '--weights', 'regnetx_002=examples/fashion-mnist/model.safetensors', '--max-pixels', '1000000', '--max-body', '8', '--access-log', '--decode-workers', '1']);
    base = s.url;
    model = createModel('resnet18').initWeights();
    const raw = Buffer.alloc(300 * 200 * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (Math.sin(i * 0.013) * 100 + 128 + ((i * 7) % 23)) & 0xff;
    await sharp(raw, { raw: { width: 300, height: 200, channels: 3 } }).png().toFile(png);
  });
  after(async () => {
    assert.equal(await s.stop(), 0);
  });

  it('answers /v2, liveness, readiness and model metadata as the protocol says', async () => {
    const meta = await getJson(`${base}/v2`);
    assert.equal(meta.status, 200);
    assert.equal(meta.json['name'], 'tsimm');
    assert.deepEqual(meta.json['extensions'], ['binary_tensor_data', 'classification', 'model_configuration', 'statistics']);
    assert.equal((await fetch(`${base}/v2/health/live`)).status, 200);
    assert.equal((await fetch(`${base}/v2/health/ready`)).status, 200);
    for (const path of ['/v2/models/resnet18', '/v2/models/resnet18/versions/1']) {
      const m = await getJson(base + path);
      assert.equal(m.status, 200);
      assert.deepEqual(m.json['inputs'], [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 224, 224] }]);
      assert.deepEqual(m.json['outputs'], [{ name: 'logits', datatype: 'FP32', shape: [-1, 1000] }]);
      const params = m.json['parameters'] as { preprocess: { size: number[]; interpolation: string; cropPct: number }; max_batch_size: number };
      assert.deepEqual(params.preprocess.size, [224, 224]);
      assert.equal(params.preprocess.interpolation, model.cfg.interpolation);
      assert.equal(params.preprocess.cropPct, model.cfg.cropPct);
      assert.equal(params.max_batch_size, 8);
    }
    assert.equal((await fetch(`${base}/v2/models/resnet18/ready`)).status, 200);
    const fm = await getJson(`${base}/v2/models/regnetx_002`);
    assert.deepEqual((fm.json['outputs'] as { shape: number[] }[])[0]!.shape, [-1, 10]);
  });

  it('infers FP32 JSON tensors as the model does in this process, and echoes the id', async () => {
    const x = values(2 * 3 * 224 * 224, 11);
    const want = (await model.run({ shape: [2, 3, 224, 224], data: x })).logits;
    const r = await post(`${base}/v2/models/resnet18/infer`, JSON.stringify({ id: 'req-1', inputs: [{ name: 'input', shape: [2, 3, 224, 224], datatype: 'FP32', data: Array.from(x) }] }), { 'content-type': 'application/json' });
    assert.equal(r.status, 200, r.body.toString());
    const body = JSON.parse(r.body.toString());
    assert.equal(body.id, 'req-1');
    assert.equal(body.model_name, 'resnet18');
    assert.equal(body.outputs[0].name, 'logits');
    assert.deepEqual(body.outputs[0].shape, [2, 1000]);
    assert.ok(maxRel(body.outputs[0].data, want.data) < 1e-5, `max rel ${maxRel(body.outputs[0].data, want.data)}`);
  });

  it('normalizes UINT8 pixel tensors with the model mean and std', async () => {
    const px = Uint8Array.from(values(3 * 224 * 224, 5), (v) => Math.floor((v + 2) * 63.9));
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const x = Float32Array.from(px, (p, i) => (p / 255 - mean[Math.floor(i / (224 * 224))]!) / std[Math.floor(i / (224 * 224))]!);
    const want = (await model.run({ shape: [1, 3, 224, 224], data: x })).logits;
    const r = await post(`${base}/v2/models/resnet18/infer`, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 224, 224], datatype: 'UINT8', data: Array.from(px) }] }));
    assert.equal(r.status, 200, r.body.toString());
    assert.ok(maxRel(JSON.parse(r.body.toString()).outputs[0].data, want.data) < 1e-5);
  });

  it("takes the request a Triton client sends: binary input, binary output, classification", async () => {
    const x = values(3 * 224 * 224, 3);
    const want = (await model.run({ shape: [1, 3, 224, 224], data: x })).logits.data;
    // What tritonclient.http sends for InferInput(..., "FP32").set_data_from_numpy(x, binary_data=True) and
    // InferRequestedOutput("logits", binary_data=True), and with class_count=3.
    const plain = binaryRequest({ inputs: [{ name: 'input', shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits', parameters: { binary_data: true } }] }, x);
    const r = await post(`${base}/v2/models/resnet18/infer`, plain.body, plain.headers);
    assert.equal(r.status, 200, r.body.toString());
    const { json, binary } = splitBinaryResponse(r);
    assert.equal(json.outputs[0]!.parameters!.binary_data_size, 4000);
    const got = new Float32Array(binary.buffer.slice(binary.byteOffset, binary.byteOffset + 4000));
    assert.ok(maxRel(got, want) < 1e-5);

    const cls = binaryRequest({ inputs: [{ name: 'input', shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], outputs: [{ name: 'logits', parameters: { classification: 3, binary_data: true } }] }, x);
    const cr = await post(`${base}/v2/models/resnet18/infer`, cls.body, cls.headers);
    assert.equal(cr.status, 200, cr.body.toString());
    const c = splitBinaryResponse(cr);
    assert.equal(c.json.outputs[0]!.datatype, 'BYTES');
    assert.deepEqual(c.json.outputs[0]!.shape, [1, 3]);
    const strings: string[] = [];
    for (let off = 0; off < c.binary.length; ) {
      const n = c.binary.readUInt32LE(off);
      strings.push(c.binary.subarray(off + 4, off + 4 + n).toString());
      off += 4 + n;
    }
    const order = Array.from(want.keys()).sort((a, b) => want[b]! - want[a]!).slice(0, 3);
    assert.deepEqual(strings.map((t) => Number(t.split(':')[1])), order);
    assert.ok(Math.abs(Number(strings[0]!.split(':')[0]) - want[order[0]!]!) < 1e-3 * Math.abs(want[order[0]!]!));
    assert.match(strings[0]!, /^-?[\d.e+-]+:\d+:[^:]+$/);

    // The JSON form of the classification extension.
    const j = await post(`${base}/v2/models/resnet18/infer`, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 224, 224], datatype: 'FP32', data: Array.from(x) }], outputs: [{ name: 'logits', parameters: { classification: 2 } }] }));
    const out = JSON.parse(j.body.toString()).outputs[0];
    assert.equal(out.datatype, 'BYTES');
    assert.deepEqual(out.data.map((t: string) => Number(t.split(':')[1])), order.slice(0, 2));
  });

  it('classifies a raw image body and a form upload exactly as `tsimm predict` does', async () => {
    const [want] = await classify(model, [png], { topk: 5 });
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(png);
    const raw = await post(`${base}/v2/models/resnet18/classify?topk=5`, bytes, { 'content-type': 'image/png' });
    assert.equal(raw.status, 200, raw.body.toString());
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'image/png' }), 'photo.png');
    const res = await fetch(`${base}/v2/models/resnet18/classify?topk=5`, { method: 'POST', body: form });
    assert.equal(res.status, 200);
    for (const body of [JSON.parse(raw.body.toString()), await res.json()]) {
      assert.deepEqual(body.predictions.map((p: { index: number }) => p.index), want!.predictions!.map((p) => p.index));
      assert.deepEqual(body.predictions.map((p: { label: string }) => p.label), want!.predictions!.map((p) => p.label));
      body.predictions.forEach((p: { prob: number }, i: number) => assert.ok(Math.abs(p.prob - want!.predictions![i]!.prob) < 1e-4));
      assert.ok(body.timing.compute_ms > 0);
    }
    // A fine-tuned model's own classes and preprocessing (28x28 Fashion-MNIST).
    const img = join(REPO, 'examples/fashion-mnist/images', readdirSync(join(REPO, 'examples/fashion-mnist/images')).sort()[0]!);
    const fm = JSON.parse((await post(`${base}/v2/models/regnetx_002/classify?topk=1`, readFileSync(img), { 'content-type': 'image/png' })).body.toString());
    const names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
    assert.ok(names.includes(fm.predictions[0].label), fm.predictions[0].label);
  });

  it('answers each kind of bad input with its status and one line, 100 times over, and stays ready', async () => {
    const big = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#808080' } }).png().toBuffer();
    const infer = `${base}/v2/models/resnet18/infer`;
    const good = (shape: number[], extra = {}) => JSON.stringify({ inputs: [{ name: 'input', shape, datatype: 'FP32', data: [1, 2, 3], ...extra }] });
    const cases: [string, () => Promise<{ status: number; body: Buffer }>, number, RegExp][] = [
      ['malformed JSON', () => post(infer, '{"inputs": ['), 400, /not valid JSON/],
      ['empty body', () => post(infer, ''), 400, /empty/],
      ['wrong datatype', () => post(infer, good([1, 3, 224, 224], { datatype: 'INT64' })), 400, /INT64.*FP32/],
      ['not a datatype', () => post(infer, good([1, 3, 224, 224], { datatype: 'FLOAT' })), 400, /not an Open Inference Protocol type/],
      ['wrong shape', () => post(infer, good([1, 3, 32, 32])), 400, /\[N, 3, 224, 224\]/],
      ['too few values', () => post(infer, good([1, 3, 224, 224])), 400, /has 3 values/],
      ['over max batch', () => post(infer, good([9, 3, 224, 224])), 400, /max batch size 8/],
      ['wrong input name', () => post(infer, JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] })), 400, /its input is "input"/],
      ['unknown output', () => post(infer, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 224, 224], datatype: 'FP32', data: [] }], outputs: [{ name: 'probs' }] })), 400, /no output "probs"|values/],
      ['bad binary header', () => post(infer, '{}', { 'inference-header-content-length': '99' }), 400, /Inference-Header-Content-Length/],
      ['unknown model', () => post(`${base}/v2/models/vit/infer`, good([1])), 404, /no model "vit"/],
      ['unknown version', () => post(`${base}/v2/models/resnet18/versions/7/infer`, good([1])), 404, /no version "7"/],
      ['unknown route', () => post(`${base}/v2/models/resnet18/explain`, '{}'), 404, /no such endpoint/],
      ['wrong method', async () => { const r = await fetch(infer); return { status: r.status, body: Buffer.from(await r.arrayBuffer()) }; }, 405, /takes POST/],
      ['corrupt image', () => post(`${base}/v2/models/resnet18/classify`, Buffer.from('\x89PNG\r\n\x1a\nnot really'), { 'content-type': 'image/png' }), 400, /request body|decode|image/],
      ['huge image', () => post(`${base}/v2/models/resnet18/classify`, big, { 'content-type': 'image/png' }), 400, /over the 1 MP limit/],
      ['empty image', () => post(`${base}/v2/models/resnet18/classify`, Buffer.alloc(0), { 'content-type': 'image/jpeg' }), 400, /empty/],
      ['JSON to classify', () => post(`${base}/v2/models/resnet18/classify`, '{}', { 'content-type': 'application/json' }), 400, /not JSON/],
      ['bad topk', () => post(`${base}/v2/models/resnet18/classify?topk=-1`, big), 400, /topk/],
      ['form without a file', () => post(`${base}/v2/models/resnet18/classify`, '--b\r\ncontent-disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n', { 'content-type': 'multipart/form-data; boundary=b' }), 400, /no file part/],
      ['body over the limit', () => post(infer, Buffer.alloc(9 * 1024 * 1024, 32)), 413, /over the 8388608 byte limit/],
    ];
    const rss0 = await metric(base, 'process_resident_memory_bytes');
    for (let round = 0; round < 100; round++) {
      for (const [what, send, status, message] of cases) {
        const r = await send();
        if (round === 0 || r.status !== status) {
          assert.equal(r.status, status, `${what}: ${r.body.toString()}`);
          const body = JSON.parse(r.body.toString());
          assert.match(body.error, message, what);
          assert.ok(!body.error.includes('\n'), `${what}: one line`);
        }
      }
    }
    assert.equal((await fetch(`${base}/v2/health/ready`)).status, 200);
    const rss1 = await metric(base, 'process_resident_memory_bytes');
    // 2,100 bad requests, 100 of them 9 MB bodies and 100 1.2 MP images: memory stays where it was (no leak).
    assert.ok(rss1 - rss0 < 150e6, `RSS grew by ${((rss1 - rss0) / 1e6).toFixed(0)} MB`);
    assert.ok((await metric(base, 'nv_inference_request_failure{model="resnet18",version="1",reason="OTHER"}')) >= 1000);
  });

  it('serves Prometheus metrics with Triton names and writes JSON access logs', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['nv_inference_request_success', 'nv_inference_count', 'nv_inference_exec_count', 'nv_inference_queue_duration_us', 'nv_inference_compute_infer_duration_us', 'nv_inference_pending_request_count', 'tsimm_inference_batch_size_bucket', 'tsimm_inference_queue_duration_seconds_bucket', 'tsimm_inference_compute_duration_seconds_bucket', 'process_resident_memory_bytes']) {
      assert.match(text, new RegExp(`^${name}[{ ]`, 'm'), name);
    }
    assert.ok((await metric(base, 'nv_inference_request_success{model="resnet18",version="1"}')) >= 5);
    const logs = s.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const inferLog = logs.find((l) => l.path === '/v2/models/resnet18/infer' && l.status === 200);
    assert.ok(inferLog && inferLog.compute_ms > 0 && inferLog.batch >= 1 && inferLog.method === 'POST');
  });
});

/**
 * A request that holds the model's only worker for a while: 32 images at 224 px on one ORT thread (about
 * 13 GFLOP, a few hundred ms even on a fast core). A lone request never waits for --max-queue-delay (nothing else
 * is queued or running), so the queue is exercised behind one of these. Resolves once it is running.
 */
async function occupy(url: string, model = 'regnetx_002'): Promise<{ done: Promise<{ status: number }> }> {
  const pending = 'nv_inference_pending_request_count{model="' + model + '",version="1"}';
  const r = binaryRequest({ inputs: [{ name: 'input', shape: [32, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: 32 * 3 * 224 * 224 * 4 } }] }, new Float32Array(32 * 3 * 224 * 224).fill(0.25));
  const done = post(`${url}/v2/models/${model}/infer`, r.body, r.headers);
  for (let i = 0; i < 400 && (await metric(url, pending)) < 1; i++) await new Promise((res) => setTimeout(res, 5));
  return { done }; // wrapped: an async function returning a promise would wait for it
}

describe('tsimm serve: dynamic batching, the bounded queue, cancellation, shutdown', () => {
  let s: ServeProcess;
  const shape = [3, 224, 224];
  const image = 3 * 224 * 224;
  const req = (seed: number) => binaryRequest({ id: String(seed), inputs: [{ name: 'input', shape: [1, ...shape], datatype: 'FP32', parameters: { binary_data_size: image * 4 } }], parameters: { binary_data_output: true } }, values(image, seed));
  const send = (seed: number) => {
    const r = req(seed);
    return post(`${s.url}/v2/models/regnetx_002/infer`, r.body, r.headers);
  };

  before(async () => {
    s = await startServe(['regnetx_002', '--random-weights', '--max-batch', '32', '--threads', '1', '--max-queue-delay', '300', '--max-queue', '3', '--workers', '1', '--access-log']);
  });
  after(() => s.stop('SIGKILL'));

  it('runs a lone request at once, gathers requests queued behind a running batch into one, and returns each its own rows', async () => {
    const model = createModel('regnetx_002').initWeights();
    const execs = () => metric(s.url, 'nv_inference_exec_count{model="regnetx_002",version="1"}');
    // Alone: no 300 ms wait (the server's own queue time for it, in its access log fields, is near 0).
    const q0 = await metric(s.url, 'nv_inference_queue_duration_us{model="regnetx_002",version="1"}');
    assert.equal((await send(7)).status, 200);
    assert.ok((await metric(s.url, 'nv_inference_queue_duration_us{model="regnetx_002",version="1"}')) - q0 < 150_000, 'a lone request is not held for --max-queue-delay');
    const exec0 = await execs();
    const busy = await occupy(s.url);
    const rs = await Promise.all([1, 2, 3].map(send));
    assert.equal((await busy.done).status, 200);
    assert.equal(await execs(), exec0 + 2, `the occupying batch, then one execution for three requests:\n${s.stderr().split('\n').slice(-6).join('\n')}`);
    for (const [i, r] of rs.entries()) {
      assert.equal(r.status, 200);
      const { json, binary } = splitBinaryResponse(r);
      assert.equal((json as unknown as { id: string }).id, String(i + 1));
      const got = new Float32Array(binary.buffer.slice(binary.byteOffset, binary.byteOffset + binary.length));
      const want = (await model.run({ shape: [1, ...shape], data: values(image, i + 1) })).logits.data;
      assert.ok(maxRel(got, want) < 1e-5);
    }
  });

  it('rejects at once with 503 and Retry-After when the queue is full', async () => {
    const busy = await occupy(s.url);
    const t0 = performance.now();
    const rs = await Promise.all([1, 2, 3, 4, 5, 6, 7].map(send));
    const rejected = rs.filter((r) => r.status === 503);
    assert.equal(rs.filter((r) => r.status === 200).length + rejected.length, 7);
    // Three wait behind the running batch (the queue holds three); the other four are refused at once.
    assert.equal(rejected.length, 4);
    assert.equal(rejected[0]!.headers.get('retry-after'), '1');
    assert.match(JSON.parse(rejected[0]!.body.toString()).error, /queue is full/);
    assert.ok(performance.now() - t0 < 30_000);
    assert.equal((await busy.done).status, 200);
    assert.equal((await fetch(`${s.url}/v2/health/ready`)).status, 200);
  });

  it('drops a request whose client has gone before it runs', async () => {
    const line = 'nv_inference_request_failure{model="regnetx_002",version="1",reason="CANCELED"}';
    const before0 = await metric(s.url, line);
    const busy = await occupy(s.url);
    const { body, headers } = req(9);
    await new Promise<void>((resolve) => {
      const r = httpRequest(`${s.url}/v2/models/regnetx_002/infer`, { method: 'POST', headers: { ...headers, 'content-length': body.length } });
      r.on('error', () => resolve());
      r.end(body);
      setTimeout(() => (r.destroy(), resolve()), 100); // queued behind the running batch
    });
    assert.equal((await busy.done).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await metric(s.url, line), before0 + 1);
    // A client gone halfway through its body: nothing waits on it (the SIGTERM drain below would).
    await new Promise<void>((resolve) => {
      const r = httpRequest(`${s.url}/v2/models/regnetx_002/infer`, { method: 'POST', headers: { 'content-length': 100_000 } });
      r.on('error', () => resolve());
      r.write(body.subarray(0, 1000));
      setTimeout(() => (r.destroy(), resolve()), 100);
    });
  });

  it('on SIGTERM turns unready, finishes every queued request, then exits 0', async () => {
    const inFlight = [1, 2, 3].map(send);
    await new Promise((r) => setTimeout(r, 80));
    s.child.kill('SIGTERM');
    const rs = await Promise.all(inFlight);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    const t0 = performance.now();
    assert.equal(await s.exited, 0);
    assert.ok(performance.now() - t0 < 5_000, 'drained at once, not at the 30 s deadline');
    await assert.rejects(fetch(`${s.url}/v2/health/live`));
    assert.match(s.stderr(), /SIGTERM: draining/);
  });
});

describe('tsimm serve: queue timeout, precisions, start-up', () => {
  it('fails a request that waits past --queue-timeout with 503', async () => {
    const s = await startServe(['regnetx_002', '--random-weights', '--max-batch', '32', '--threads', '1', '--max-queue-delay', '1000', '--queue-timeout', '100']);
    try {
      // Behind a batch that runs longer than the timeout.
      const busy = await occupy(s.url);
      const x = Array.from(values(3 * 224 * 224, 5));
      const r = await post(`${s.url}/v2/models/regnetx_002/infer`, JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 224, 224], datatype: 'FP32', data: x }] }));
      assert.equal(r.status, 503);
      assert.match(JSON.parse(r.body.toString()).error, /waited 100 ms in the queue/);
      // A request's own `timeout` parameter (Triton's, in microseconds) shortens it.
      const own = await post(`${s.url}/v2/models/regnetx_002/infer`, JSON.stringify({ parameters: { timeout: 30_000 }, inputs: [{ name: 'input', shape: [1, 3, 224, 224], datatype: 'FP32', data: x }] }));
      assert.equal(own.status, 503);
      assert.match(JSON.parse(own.body.toString()).error, /waited 30 ms/);
      assert.equal((await busy.done).status, 200);
    } finally {
      await s.stop();
    }
  });

  it('serves --precision int8 (calibrated on --calib) and fp16 with the fp32 model\'s answers', async () => {
    const images = join(REPO, 'examples/fashion-mnist/images');
    const files = readdirSync(images).sort().map((f) => join(images, f));
    const { readFileSync } = await import('node:fs');
    const base = ['regnetx_002', '--weights', 'examples/fashion-mnist/model.safetensors'];
    const top1 = async (s: ServeProcess) => {
      const out: string[] = [];
      for (const f of files.slice(0, 8)) out.push(JSON.parse((await post(`${s.url}/v2/models/regnetx_002/classify?topk=1`, readFileSync(f))).body.toString()).predictions[0].label);
      return out;
    };
    const results: Record<string, string[]> = {};
    for (const precision of ['fp32', 'int8', 'fp16']) {
      const s = await startServe([...base, '--precision', precision, ...(precision === 'int8' ? ['--calib', images] : [])]);
      try {
        results[precision] = await top1(s);
        assert.equal(((await getJson(`${s.url}/v2/models/regnetx_002`)).json['parameters'] as { precision: string }).precision, precision);
      } finally {
        await s.stop();
      }
    }
    const agree = (p: string) => results[p]!.filter((l, i) => l === results['fp32']![i]).length;
    assert.ok(agree('int8') >= 7, `int8 agrees on ${agree('int8')} of 8`);
    assert.equal(agree('fp16'), 8);
  });

  it('is live at once, and ready (and serving) only once its model is loaded', async () => {
    const s = await startServe(['resnet50d', '--random-weights'], 120_000, 'listening');
    try {
      assert.equal((await fetch(`${s.url}/v2/health/live`)).status, 200);
      const ready = await fetch(`${s.url}/v2/health/ready`);
      assert.equal(ready.status, 503);
      assert.match(((await ready.json()) as { error: string }).error, /resnet50d still loading/);
      assert.equal((await fetch(`${s.url}/v2/models/resnet50d/ready`)).status, 503);
      const r = await post(`${s.url}/v2/models/resnet50d/infer`, '{}');
      assert.equal(r.status, 503);
      assert.equal(r.headers.get('retry-after'), '1');
      for (let i = 0; i < 600 && (await fetch(`${s.url}/v2/health/ready`)).status !== 200; i++) await new Promise((res) => setTimeout(res, 100));
      assert.equal((await fetch(`${s.url}/v2/health/ready`)).status, 200);
      assert.equal((await fetch(`${s.url}/v2/models/resnet50d/ready`)).status, 200);
    } finally {
      await s.stop();
    }
  });

  it('refuses an unknown model name, a device not installed and a port in use in one line, exit 1', async () => {
    const { runCli } = await import('./helpers/cli.js');
    const r = runCli(dir, ['serve', 'resnet9000', '--random-weights']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown model "resnet9000"|resnet9000/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const cuda = runCli(dir, ['serve', 'regnetx_002', '--random-weights', '--device', 'cuda', '--port', '0']);
    if (!cuda.stderr.includes('device cuda') || !cuda.stderr.includes('not installed')) assert.equal(cuda.code, 0, 'a CUDA EP is installed here'); // then cuda serves
    else {
      assert.equal(cuda.code, 1);
      assert.equal(cuda.stdout, '', 'fails before the port opens');
      assert.match(cuda.stderr, /^tsimm serve: error: device cuda: .*install the CUDA EP with: npm install onnxruntime-node --onnxruntime-node-install=cuda12/);
    }
    const s = await startServe(['regnetx_002', '--random-weights', '--size', '32']);
    try {
      const port = new URL(s.url).port;
      const { spawnSync } = await import('node:child_process');
      const p = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO, 'src/cli/main.ts'), 'serve', 'regnetx_002', '--random-weights', '--port', port], { encoding: 'utf8' });
      assert.equal(p.status, 1);
      assert.match(p.stderr, new RegExp(`port ${port} is in use`));
    } finally {
      await s.stop();
    }
  });
});

describeOrSkip('tsimm serve --device webgpu (SwiftShader)', NO_SWIFTSHADER, () => {
  it('serves from the WebGPU EP in its worker the probabilities the CPU gives', async () => {
    const img = join(REPO, 'examples/fashion-mnist/images', readdirSync(join(REPO, 'examples/fashion-mnist/images')).sort()[1]!);
    const { readFileSync } = await import('node:fs');
    const args = ['regnetx_002', '--weights', 'examples/fashion-mnist/model.safetensors'];
    const cpu = await startServe(args);
    const gpu = await startServe([...args, '--device', 'webgpu'], 120_000, 'ready', SWIFTSHADER_ENV);
    try {
      const ask = async (s: ServeProcess) => JSON.parse((await post(`${s.url}/v2/models/regnetx_002/classify?topk=3`, readFileSync(img), { 'content-type': 'image/png' })).body.toString());
      const [a, b] = [await ask(cpu), await ask(gpu)];
      assert.deepEqual(b.predictions.map((p: { index: number }) => p.index), a.predictions.map((p: { index: number }) => p.index));
      b.predictions.forEach((p: { logit: number }, i: number) => assert.ok(Math.abs(p.logit - a.predictions[i].logit) < 1e-4 * Math.max(1, Math.abs(a.predictions[i].logit))));
      assert.equal(((await getJson(`${gpu.url}/v2/models/regnetx_002`)).json['parameters'] as { device: string }).device, 'webgpu');
    } finally {
      await Promise.all([cpu.stop(), gpu.stop()]);
    }
  });
});


describeOrSkip('tsimm serve: the demo page in Chromium', NO_CHROMIUM, () => {
  let s: ServeProcess;
  before(async () => {
    s = await startServe(['regnetx_002', '--weights', 'examples/fashion-mnist/model.safetensors']);
  });
  after(() => s.stop());

  /** Upload a photo on the demo page; what the page shows from the server and from its own run. */
  async function demoRun(flags: string[], screenshot: string) {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...FLAGS, ...flags] });
    try {
      const page = await browser.newPage();
      // Every 4xx/5xx the page causes (a favicon it asks for and the server lacks, say).
      const failed: string[] = [];
      page.on('response', (r) => void (r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`)));
      await page.goto(s.url);
      const images = join(REPO, 'examples/fashion-mnist/images');
      await page.setInputFiles('#file', join(images, readdirSync(images).sort()[3]!));
      await page.waitForFunction(() => (window as unknown as { __demo?: unknown }).__demo, undefined, { timeout: 90_000 });
      const demo = (await page.evaluate(() => (window as unknown as { __demo: unknown }).__demo)) as {
        error?: string;
        agree: boolean;
        server: { predictions: { index: number; label: string; prob: number }[] };
        browser: { predictions: { index: number; label: string; prob: number }[]; ep: string; precision: string; error?: string };
      };
      const adapter = await page.evaluate(async () => {
        const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ features: Set<string> } | null> } }).gpu;
        const a = gpu ? await gpu.requestAdapter().catch(() => null) : null;
        return { adapter: !!a, shaderF16: !!a?.features.has('shader-f16') };
      });
      const text = { server: (await page.textContent('#server')) ?? '', agree: (await page.textContent('#agree')) ?? '' };
      const out = process.env['TSIMM_TEST_OUTPUT'] ?? join(tmpdir(), 'tsimm-test-output');
      mkdirSync(out, { recursive: true });
      writeFileSync(join(out, screenshot), await page.screenshot({ fullPage: true }));
      return { demo, adapter, text, failed };
    } finally {
      await browser.close();
    }
  }

  function checkAgreement({ demo, adapter, text }: Awaited<ReturnType<typeof demoRun>>): void {
    assert.equal(demo.error, undefined);
    assert.equal(demo.browser.error, undefined);
    // The page's choice (tsimm/web's pickBackend): WebGPU where there is an adapter, fp16 where it has shader-f16.
    assert.equal(demo.browser.ep, adapter.adapter ? 'webgpu' : 'wasm');
    assert.equal(demo.browser.precision, adapter.shaderF16 ? 'fp16' : 'fp32');
    assert.equal(demo.browser.predictions[0]!.label, demo.server.predictions[0]!.label);
    assert.match(text.server, new RegExp(demo.server.predictions[0]!.label.replace(/[/]/g, '.')));
    const tol = demo.browser.precision === 'fp16' ? 2e-2 : 1e-4;
    demo.browser.predictions.forEach((p, i) => assert.ok(Math.abs(p.prob - demo.server.predictions[i]!.prob) < tol));
    if (demo.browser.precision === 'fp32') {
      assert.equal(demo.agree, true);
      assert.deepEqual(demo.browser.predictions.map((p) => p.label), demo.server.predictions.map((p) => p.label));
      assert.match(text.agree, /agree/);
    }
  }

  it('uploads a photo; the server and the page (onnxruntime-web, wasm) show the same top-5', async () => {
    const r = await demoRun([], 'serve-demo.png');
    assert.equal(r.adapter.adapter, false, 'headless Chromium without WebGPU flags offers no adapter');
    checkAgreement(r);
    assert.deepEqual(r.failed, [], 'the page loads with no failed request (no favicon 404)');
    const twin = await fetch(`${s.url}/onnx/regnetx_002/fp16.onnx`);
    assert.equal(twin.status, 200, 'the fp16 twin of an fp32 model is served for pages with shader-f16');
  });

  it('the page on WebGPU (SwiftShader): same top-5, fp32 since the adapter has no shader-f16', async (t) => {
    const r = await demoRun(WEBGPU_FLAGS, 'serve-demo-webgpu.png');
    if (!r.adapter.adapter) return t.skip('this Chromium offers no WebGPU adapter on SwiftShader');
    checkAgreement(r);
    t.diagnostic(`page: ${r.demo.browser.ep} ${r.demo.browser.precision}`);
  });
});

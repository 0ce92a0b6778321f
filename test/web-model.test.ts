/**
 * `createModel` in a real page (issue 18, parts 2–5): Chromium over a 127.0.0.1 hub with the Hugging Face layout.
 * resnet50d's timm-keyed safetensors (the "fixture weights v1" rule) are downloaded, verified, cached and run in
 * the library's worker, giving timm's golden logits; the second load needs no network; broken downloads fail with
 * a code and leave nothing in the cache; every shared photo preprocesses as PIL / OpenCV do, the EXIF one included;
 * the main thread stays responsive while resnet50d classifies.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { normalize, type PreprocessConfig } from '../src/data/transforms.js';
import { resolveModel } from '../src/models/index.js';
import { concatChunks } from '../src/onnx/export.js';
import { readNpy } from '../src/node/npy.js';
import { encodeSafetensors } from '../src/weights/safetensors.js';
import type { HostTensor } from '../src/weights/tensor.js';
import { buildWebBundles } from '../web/build.js';
import { CHROMIUM, FLAGS, NO_CHROMIUM } from './helpers/chromium.js';
import { loadFixture, NO_SHARED, relError, SHARED, type Fixture } from './helpers/fixtures.js';
import { describeOrSkip } from './helpers/skip.js';
import { servePages, type PageFiles } from './helpers/web-server.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-web-model-'));
const files: PageFiles = new Map();
const requests: string[] = [];
let browser: Browser;
/** One context: its pages share the origin's Cache API storage, as a user's tabs do. */
let context: BrowserContext;
let server: Server;
let base: string;
let fixture: Fixture;

const hubId = (name: string) => resolveModel(name).cfg.weights!.hfHubId!;
const hubPath = (name: string, file: string) => `/${hubId(name)}/resolve/main/${file}`;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const safetensorsBytes = (t: Map<string, HostTensor>, meta?: Record<string, string>) => {
  const chunks = encodeSafetensors(t, meta);
  return concatChunks(chunks, chunks.reduce((a, c) => a + c.byteLength, 0));
};
/** A hub file as the hub serves it: size and sha256 stated (x-linked-size / x-linked-etag), overridable to lie. */
const hubFile = (body: Uint8Array, o: { size?: number; sha?: string } = {}) => ({
  body,
  type: 'application/octet-stream',
  headers: { 'x-linked-size': String(o.size ?? body.byteLength), 'x-linked-etag': `"${o.sha ?? sha256(body)}"`, 'access-control-expose-headers': 'x-linked-size, x-linked-etag' },
});

// __name: the helper tsx's transpiler puts into functions that inPage sends to the page as source.
const PAGE = `<!doctype html><meta charset="utf-8"><script>window.__name = (f) => f;</script>
<script type="importmap">{ "imports": { "onnxruntime-web": "/ort/ort.webgpu.min.mjs" } }</script>
<script type="module">import * as tsimm from '/tsimm-web.js'; window.tsimm = tsimm; window.__ready = true;</script>`;

type Tsimm = typeof import('../web/tsimm-web.js');
async function openPage(): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/index.html`);
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready);
  return page;
}

/** Run `fn` in the page with `tsimm` in scope; a thrown error comes back as { error, code }. */
function inPage<A, R>(page: Page, fn: (tsimm: Tsimm, arg: A) => Promise<R>, arg: A): Promise<R | { error: string; code?: string }> {
  return page.evaluate(
    async ({ src, arg }) => {
      const tsimm = (window as unknown as { tsimm: Tsimm }).tsimm;
      try {
        return await (0, eval)(`(${src})`)(tsimm, arg);
      } catch (e) {
        return { error: String((e as Error).message ?? e), code: (e as { code?: string }).code };
      }
    },
    { src: fn.toString(), arg },
  );
}

describeOrSkip('createModel in Chromium', NO_CHROMIUM || NO_SHARED, () => {
  before(async () => {
    const r = await buildWebBundles(join(dir, 'tsimm-web.js'));
    files.set('/tsimm-web.js', { body: readFileSync(r.main), type: 'text/javascript' });
    files.set('/tsimm-worker.js', { body: readFileSync(r.worker), type: 'text/javascript' });
    files.set('/index.html', { body: PAGE, type: 'text/html' });
    fixture = loadFixture('resnet50d');
    const good = safetensorsBytes(fixture.weights, { format: 'pt' });
    files.set(hubPath('resnet50d', 'model.safetensors'), hubFile(good));
    files.set(hubPath('resnet50d', 'config.json'), { body: JSON.stringify({ architecture: 'resnet50d', num_classes: 1000 }), type: 'application/json' });
    // resnet18: absent (404). resnet34: the connection ends half-way. resnet34d: bytes that are not what the hub
    // states (sha256). resnet101d: a verified file whose header lies about its tensors.
    const small = safetensorsBytes(new Map([['fc.weight', { shape: [4, 4], data: new Float32Array(16).fill(1) }]]));
    files.set(hubPath('resnet34', 'model.safetensors'), hubFile(good.subarray(0, 100_000), { size: good.byteLength, sha: sha256(good) }));
    files.set(hubPath('resnet34d', 'model.safetensors'), hubFile(small, { sha: sha256(good) }));
    const lying = small.slice();
    lying.set(new TextEncoder().encode('{"fc.weight":{"dtype":"F32","shape":[4,4],"data_offsets":[0,99]}}'.padEnd(Number(new DataView(small.buffer).getBigUint64(0, true)))), 8);
    files.set(hubPath('resnet101d', 'model.safetensors'), hubFile(lying));
    for (const f of readdirSync(join(SHARED, 'data/images'))) files.set(`/images/${f}`, { body: readFileSync(join(SHARED, 'data/images', f)), type: 'image/jpeg' });
    files.set('/images/broken.jpg', { body: readFileSync(join(SHARED, 'data/images', 'n01697457_African_crocodile.JPEG')).subarray(0, 300), type: 'image/jpeg' });
    ({ base, server } = await servePages(files, (p) => requests.push(p)));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    context = await browser.newContext();
  });
  after(async () => {
    await browser?.close();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("downloads resnet50d's safetensors from the hub with progress, and runs with timm's logits", async (t) => {
    const page = await openPage();
    const r = await inPage(
      page,
      async (tsimm, a) => {
        const progress: { file: string; loaded: number; total?: number }[] = [];
        const m = await tsimm.createModel('resnet50d.ra2_in1k', { pretrained: true, hubUrl: a.hub, device: 'wasm', onProgress: (p) => progress.push(p) });
        const out = await m.run({ data: new Float32Array(a.input), shape: a.shape });
        return { logits: Array.from(out.logits), features: Array.from(out.features), progress, notes: m.notes, device: m.device, cache: await tsimm.cacheInfo() };
      },
      { hub: base, input: Array.from(fixture.input.data), shape: fixture.input.shape },
    );
    assert.ok(!('error' in r), JSON.stringify(r));
    const size = (files.get(hubPath('resnet50d', 'model.safetensors'))!.body as Uint8Array).byteLength;
    const last = r.progress.filter((p) => p.file.endsWith('model.safetensors')).at(-1)!;
    assert.deepEqual(last, { file: `${hubId('resnet50d')}/model.safetensors`, loaded: size, total: size });
    assert.ok(r.progress.filter((p) => p.file.endsWith('model.safetensors')).length > 1, 'progress came in steps');
    const logitsErr = relError(Float32Array.from(r.logits), fixture.logits.data);
    const featErr = relError(Float32Array.from(r.features), fixture.features.data);
    assert.ok(logitsErr < fixture.meta.tolerance_rel, `logits relative error ${logitsErr}`);
    assert.ok(featErr < fixture.meta.tolerance_rel, `features relative error ${featErr}`);
    assert.deepEqual(r.cache.files.map((f) => f.url).sort(), [`${base}${hubPath('resnet50d', 'config.json')}`, `${base}${hubPath('resnet50d', 'model.safetensors')}`]);
    assert.equal(r.cache.files.find((f) => f.url.endsWith('.safetensors'))!.bytes, size);
    t.diagnostic(`logits rel err ${logitsErr.toExponential(2)}, features ${featErr.toExponential(2)} (tolerance ${fixture.meta.tolerance_rel}); ${r.device}; notes: ${r.notes.join('; ')}`);
    await page.close();
  });

  it('loads from the cache in a new page with the hub gone, and refuses an uncached model offline', async () => {
    const before = requests.filter((p) => p.endsWith('model.safetensors')).length;
    const saved = new Map([...files].filter(([k]) => k.includes('/resolve/')));
    for (const k of saved.keys()) files.delete(k);
    try {
      const page = await openPage();
      const r = await inPage(page, async (tsimm, a) => {
        const m = await tsimm.createModel('resnet50d.ra2_in1k', { pretrained: true, hubUrl: a.hub, device: 'wasm', offline: true });
        return { params: m.info.params };
      }, { hub: base });
      assert.ok(!('error' in r), JSON.stringify(r));
      assert.equal(r.params, fixture.meta.params);
      const off = await inPage(page, (tsimm, a) => tsimm.createModel('resnet18', { pretrained: true, hubUrl: a.hub, offline: true }).then(() => ({})), { hub: base });
      assert.equal((off as { code?: string }).code, 'OFFLINE');
      assert.match((off as { error: string }).error, /not in the cache and the page is offline; load the model once online/);
      await page.close();
    } finally {
      for (const [k, v] of saved) files.set(k, v);
    }
    assert.equal(requests.filter((p) => p.endsWith('model.safetensors')).length, before, 'the cached load fetched nothing');
  });

  it('fails a 404, a truncated download, a wrong sha256 and a lying header with a code, caching none of them', async () => {
    const page = await openPage();
    const expect: [string, string, RegExp][] = [
      ['resnet18', 'NOT_FOUND', /does not exist \(HTTP 404\): check the model name and tag/],
      ['resnet34', 'TRUNCATED', /arrived with 100000 bytes, but the host states \d+; the download is incomplete .* nothing was cached/],
      ['resnet34d', 'CHECKSUM', /has sha256 [0-9a-f]{12}…, but the host states [0-9a-f]{12}…; the file is corrupt — nothing was cached/],
      ['resnet101d', 'BAD_CHECKPOINT', /not a valid safetensors file: tensor fc\.weight lies outside the file/],
      ['resnet50dd', 'UNKNOWN_MODEL', /unknown model "resnet50dd"; did you mean resnet50d/],
    ];
    for (const [name, code, message] of expect) {
      const r = (await inPage(page, (tsimm, a) => tsimm.createModel(a.name, { pretrained: true, hubUrl: a.hub, device: 'wasm' }).then(() => ({})), { name, hub: base })) as { error?: string; code?: string };
      assert.equal(r.code, code, `${name}: ${r.error}`);
      assert.match(r.error!, message);
    }
    const bad = (await inPage(page, async (tsimm) => {
      const bytes = await (await fetch('/images/broken.jpg')).arrayBuffer();
      const m = await tsimm.createModel('resnet18', { inputSize: 32, device: 'wasm' });
      return m.classify(new Blob([bytes]));
    }, {})) as { error?: string; code?: string };
    assert.equal(bad.code, 'BAD_IMAGE', bad.error);
    const cache = (await inPage(page, (tsimm) => tsimm.cacheInfo(), {})) as { files: { url: string }[] };
    for (const name of ['resnet18', 'resnet34', 'resnet34d', 'resnet101d']) assert.ok(!cache.files.some((f) => f.url.includes(hubId(name))), `${name} is in the cache`);
    await page.close();
  });

  it('preprocesses every shared photo bit for bit as PIL (EXIF ignored) and OpenCV (EXIF applied) do', async (t) => {
    const index = JSON.parse(readFileSync(join(SHARED, 'data/preprocess/index.json'), 'utf8')) as {
      images: Record<string, { pipelines: string[]; exif_orientation: number }>;
      pipelines: Record<string, { kind: 'pil' | 'cv2'; size: number; crop_pct_or_short: number; interpolation: 'bilinear' | 'bicubic' }>;
    };
    const page = await openPage();
    const report: string[] = [];
    for (const [file, info] of Object.entries(index.images)) {
      for (const name of info.pipelines) {
        const p = index.pipelines[name]!;
        const b = { size: [p.size, p.size] as [number, number], cropMode: 'center' as const, interpolation: p.interpolation, mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number], maxPixels: 1e9 };
        const config: PreprocessConfig = p.kind === 'pil' ? { ...b, backend: 'pil', cropPct: p.crop_pct_or_short, exifRotate: false } : { ...b, backend: 'cv2', cropPct: p.size / p.crop_pct_or_short, resizeShort: p.crop_pct_or_short, exifRotate: true };
        const r = await inPage(page, async (tsimm, a) => {
          const blob = await (await fetch(`/images/${a.file}`)).blob();
          const out = await tsimm.preprocessImage(new File([blob], a.file, { type: 'image/jpeg' }), a.config);
          // Bytes as base64: a JSON array of 150k numbers per tensor is most of this test's time otherwise.
          const b64 = (v: ArrayBufferView) => {
            const u = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
            let s = '';
            for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
            return btoa(s);
          };
          return { pixels: b64(out.pixels), width: out.width, height: out.height, tensor: b64(out.tensor) };
        }, { file, config });
        assert.ok(!('error' in r), JSON.stringify(r));
        const bytes = (s: string) => Buffer.from(s, 'base64');
        const pixels = new Uint8Array(bytes(r.pixels));
        const tb = bytes(r.tensor);
        const tensor = new Float32Array(tb.buffer.slice(tb.byteOffset, tb.byteOffset + tb.byteLength));
        const ref = readNpy(join(SHARED, 'data/preprocess', file.replace(/\.JPEG$/, ''), `${name}.npy`));
        assert.deepEqual([r.height, r.width, 3], ref.shape, `${file} ${name}: shape`);
        let max = 0;
        for (let i = 0; i < ref.data.length; i++) max = Math.max(max, Math.abs(pixels[i]! - ref.data[i]!));
        assert.equal(max, 0, `${file} ${name}${info.exif_orientation !== 1 ? ` (EXIF ${info.exif_orientation})` : ''}: max |diff| ${max}`);
        const want = normalize({ width: r.width, height: r.height, data: Uint8Array.from(ref.data) }, config);
        assert.deepEqual(tensor, want, `${file} ${name}: tensor`);
        report.push(`${file.split('_')[0]}/${name}`);
      }
    }
    t.diagnostic(`${report.length} photo × pipeline tensors bit-exact, over ${Object.keys(index.images).length} photos`);
    await page.close();
  });

  it('takes File, Blob, ArrayBuffer, ImageBitmap, <img>, <canvas>, ImageData and VideoFrame to the same tensor', async () => {
    const page = await openPage();
    const r = await inPage(page, async (tsimm) => {
      const url = '/images/n01697457_African_crocodile.JPEG';
      const blob = await (await fetch(url)).blob();
      const config = { size: [224, 224], cropPct: 0.875, cropMode: 'center', interpolation: 'bicubic', backend: 'pil', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], exifRotate: false, maxPixels: 1e9 } as const;
      const img = new Image();
      img.src = url;
      await img.decode();
      const bitmap = () => createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
      const canvas = document.createElement('canvas');
      const b0 = await bitmap();
      canvas.width = b0.width;
      canvas.height = b0.height;
      canvas.getContext('2d')!.drawImage(b0, 0, 0);
      const imageData = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      const inputs: [string, () => Promise<unknown>][] = [
        ['File', async () => new File([blob], 'a.jpg')],
        ['Blob', async () => blob],
        ['ArrayBuffer', async () => blob.arrayBuffer()],
        ['ImageBitmap', bitmap],
        ['HTMLImageElement', async () => img],
        ['HTMLCanvasElement', async () => canvas],
        ['ImageData', async () => imageData],
        ['VideoFrame', async () => new VideoFrame(await bitmap(), { timestamp: 0 })],
      ];
      const out: Record<string, number[]> = {};
      for (const [name, make] of inputs) out[name] = Array.from((await tsimm.preprocessImage((await make()) as Blob, config as never)).tensor);
      return out;
    }, {});
    assert.ok(!('error' in r), JSON.stringify(r).slice(0, 500));
    const ref = (r as Record<string, number[]>)['File']!;
    for (const [name, x] of Object.entries(r as Record<string, number[]>)) assert.deepEqual(x, ref, name);
    await page.close();
  });

  it('classifies in the worker: labels, top-k, features; the main thread stays responsive while resnet50d runs', async (t) => {
    const page = await openPage();
    const r = await inPage(page, async (tsimm, a) => {
      const m = await tsimm.createModel('resnet50d.ra2_in1k', { pretrained: true, hubUrl: a.hub, device: 'wasm' });
      const blob = await (await fetch('/images/n02086079_Pekinese.JPEG')).blob();
      const x = await m.preprocess(blob);
      const ran = await m.run({ data: x, shape: [1, 3, 224, 224] });
      const features = await m.features(blob);
      // Main-thread lag: the longest gap between 5 ms timer ticks while two classifications run.
      let last = performance.now();
      let maxLag = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        maxLag = Math.max(maxLag, now - last - 5);
        last = now;
      }, 5);
      const t0 = performance.now();
      let top: { index: number; label: string; prob: number }[] = [];
      for (let i = 0; i < 2; i++) top = await m.classify(blob, { topk: 5 });
      const classifyMs = (performance.now() - t0) / 2;
      clearInterval(timer);
      return { top, logits: Array.from(ran.logits), features: Array.from(features), ranFeatures: Array.from(ran.features), maxLag, classifyMs };
    }, { hub: base });
    assert.ok(!('error' in r), JSON.stringify(r));
    assert.equal(r.top.length, 5);
    const order = [...r.logits.keys()].sort((i, j) => r.logits[j]! - r.logits[i]!).slice(0, 5);
    assert.deepEqual(r.top.map((p) => p.index), order);
    const labels = readFileSync(join(SHARED, 'data/imagenet1k-labels.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t')[2]!.split(',')[0]!.trim());
    assert.deepEqual(r.top.map((p) => p.label), order.map((i) => labels[i]));
    for (let i = 1; i < 5; i++) assert.ok(r.top[i]!.prob <= r.top[i - 1]!.prob);
    assert.deepEqual(r.features, r.ranFeatures);
    // The page's own work is a few postMessages: its longest stall is a small fraction of one classification.
    assert.ok(r.maxLag < Math.max(50, r.classifyMs / 4), `main thread stalled ${r.maxLag.toFixed(0)} ms while a classification took ${r.classifyMs.toFixed(0)} ms`);
    t.diagnostic(`classify ${r.classifyMs.toFixed(0)} ms/image (wasm); main-thread max lag ${r.maxLag.toFixed(1)} ms`);
    await page.close();
  });
});

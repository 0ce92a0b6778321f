/**
 * Fine-tuning in the page (issue 18, part 6), against Node's trainer on the same weights and batches: the page's
 * train-time batches are Node's trainTransform bit for bit, its SGD steps give Node's losses, and what it saves
 * (safetensors + config.json, ONNX) loads in Node with the logits the page computes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { deriveRng, trainTransform } from '../src/data/augment.js';
import { decodeImage, normalize, transformImage } from '../src/data/preprocess.js';
import { createModel } from '../src/model.js';
import { loadSafetensors } from '../src/node/safetensors.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { runConfigFor } from '../src/node/run-config.js';
import { buildWebBundles } from '../web/build.js';
import { CHROMIUM, FLAGS, NO_CHROMIUM } from './helpers/chromium.js';
import { NO_SHARED, relError, SHARED } from './helpers/fixtures.js';
import { describeOrSkip } from './helpers/skip.js';
import { servePages, type PageFiles } from './helpers/web-server.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-web-train-'));
const NAME = 'regnetx_002';
const SIZE = 64;
const CLASSES = ['crocodile', 'spider', 'tusker'];
const PHOTOS = ['n01697457_African_crocodile.JPEG', 'n01773797_garden_spider.JPEG', 'n01871265_tusker.JPEG', 'n02086079_Pekinese.JPEG'];
const LABELS = [0, 1, 2, 0];
// Parity, not accuracy: random weights with BatchNorm on identity running statistics give large logits, so the
// step is small (SGD, lr 1e-5, the last two stages and head training) to keep the two runtimes' rounding
// rounding-sized. Larger steps, train-mode BatchNorm over a batch of 4, or AdamW's first steps (which divide by
// |g|) amplify it past any tolerance; the engine's arithmetic itself is Node's code (test/train.test.ts).
const OPTIONS = { optimizer: 'sgd', lr: 1e-5, momentum: 0.9, weightDecay: 1e-4, freeze: ['stem', 's1', 's2'], batchNorm: 'frozen' } as const;
const AUGMENT = { autoAugment: 'rand-m9-mstd0.5', reprob: 0.25 };
const SEED = 11;

const PAGE = `<!doctype html><meta charset="utf-8"><script>window.__name = (f) => f;</script>
<script type="importmap">{ "imports": { "onnxruntime-web": "/ort/ort.webgpu.min.mjs" } }</script>
<script type="module">import * as tsimm from '/tsimm-web.js'; window.tsimm = tsimm; window.__ready = true;</script>`;

describeOrSkip('fine-tuning in Chromium', NO_CHROMIUM || NO_SHARED, () => {
  let browser: Browser;
  let server: Server;
  let page: Page;
  before(async () => {
    const r = await buildWebBundles(join(dir, 'tsimm-web.js'));
    const files: PageFiles = new Map();
    files.set('/tsimm-web.js', { body: readFileSync(r.main), type: 'text/javascript' });
    files.set('/tsimm-worker.js', { body: readFileSync(r.worker), type: 'text/javascript' });
    files.set('/index.html', { body: PAGE, type: 'text/html' });
    for (const f of PHOTOS) files.set(`/images/${f}`, { body: readFileSync(join(SHARED, 'data/images', f)), type: 'image/jpeg' });
    let base: string;
    ({ base, server } = await servePages(files));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    page = await browser.newPage();
    await page.goto(`${base}/index.html`);
    await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready);
  });
  after(async () => {
    await browser?.close();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("trains with Node's batches, losses and saved files", async (t) => {
    type T = typeof import('../web/tsimm-web.js');
    const r = await page.evaluate(
      async (a) => {
        const tsimm = (window as unknown as { tsimm: T }).tsimm;
        try {
          const blobs = await Promise.all(a.photos.map(async (f) => (await fetch(`/images/${f}`)).blob()));
          const ft = await tsimm.createModel(a.name, { numClasses: 3, classNames: a.classes, inputSize: a.size, seed: 5, device: 'wasm' });
          const trainer = await ft.trainer(a.options);
          // Bytes as base64: JSON arrays of megabytes of numbers would be most of this test's time.
          const b64 = (v: ArrayBufferView) => {
            const u = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
            let s = '';
            for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode(...u.subarray(i, i + 0x8000));
            return btoa(s);
          };
          const batches: string[] = [];
          const losses: number[] = [];
          for (let epoch = 0; epoch < 3; epoch++) {
            const batch = await ft.preprocessBatch(blobs, { train: true, seed: a.seed, epoch, augment: a.augment });
            batches.push(b64(batch.data));
            losses.push((await trainer.step(batch, a.labels)).loss);
          }
          const evalBatch = await ft.preprocessBatch(blobs);
          const after = await ft.run({ data: evalBatch.data, shape: evalBatch.shape });
          const top = await ft.classify(blobs[0]!, { topk: 3 });
          // The saved file back in the page with no numClasses: its classifier sets the class count, as in Node.
          const saved = await ft.saveSafetensors();
          const again = await tsimm.createModel(a.name, { weights: saved.slice().buffer, inputSize: a.size, device: 'wasm' });
          const reloaded = Array.from((await again.run({ data: evalBatch.data, shape: evalBatch.shape })).logits);
          await again.dispose();
          return {
            reloaded,
            batches,
            losses,
            evalBatch: b64(evalBatch.data),
            logits: Array.from(after.logits),
            top,
            safetensors: b64(await ft.saveSafetensors()),
            config: await ft.saveConfig(),
            onnx: b64(await ft.saveOnnx()),
          };
        } catch (e) {
          return { error: String((e as Error).stack ?? e) };
        }
      },
      { name: NAME, size: SIZE, classes: CLASSES, photos: PHOTOS, labels: LABELS, options: OPTIONS, augment: AUGMENT, seed: SEED },
    );
    assert.ok(!('error' in r), (r as { error: string }).error);

    const floats = (b64: string) => {
      const b = Buffer.from(b64, 'base64');
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    };
    // Node: the same images through the same transform, the same weights through the same trainer.
    const model = createModel(NAME, { numClasses: 3, inputSize: SIZE }).initWeights(5);
    const cfg = model.cfg;
    const p = { ...(await import('../src/data/transforms.js')).resolvePreprocess(cfg, { size: SIZE }) };
    const imgs = await Promise.all(PHOTOS.map((f) => decodeImage(join(SHARED, 'data/images', f), { exifRotate: p.exifRotate, maxPixels: 1e9 })));
    const tt = trainTransform({ inputSize: [3, SIZE, SIZE], interpolation: p.interpolation, mean: p.mean, std: p.std }, AUGMENT);
    const trainer = model.trainer({ ...OPTIONS, freeze: [...OPTIONS.freeze] });
    const nodeLosses: number[] = [];
    const n = 3 * SIZE * SIZE;
    for (let epoch = 0; epoch < 3; epoch++) {
      const data = new Float32Array(PHOTOS.length * n);
      imgs.forEach((img, i) => tt(img, deriveRng(SEED, epoch, i), data, i * n));
      assert.deepEqual(floats(r.batches[epoch]!), data, `epoch ${epoch}: the page's train batch is Node's`);
      nodeLosses.push((await trainer.step({ shape: [PHOTOS.length, 3, SIZE, SIZE], data }, LABELS)).loss);
    }
    await trainer.release();
    // Step 0 runs on identical weights; later steps carry the two runtimes' rounding through batch-4 BatchNorm.
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(r.losses[i]! - nodeLosses[i]!) <= (i === 0 ? 1e-4 : 1e-3) * Math.max(1, Math.abs(nodeLosses[i]!)), `step ${i}: page loss ${r.losses[i]} vs Node ${nodeLosses[i]}`);
    const evalData = new Float32Array(PHOTOS.length * n);
    imgs.forEach((img, i) => normalize(transformImage(img, p), p, evalData, i * n));
    assert.deepEqual(floats(r.evalBatch), evalData);

    // The page's files, in Node: safetensors + config.json as `--weights` reads them, and the ONNX file.
    writeFileSync(join(dir, 'model.safetensors'), Buffer.from(r.safetensors, 'base64'));
    writeFileSync(join(dir, 'config.json'), r.config);
    const rc = runConfigFor(join(dir, 'model.safetensors'))!;
    assert.deepEqual([rc.model, rc.numClasses, rc.size, rc.classNames], [NAME, 3, [SIZE, SIZE], CLASSES]);
    const loaded = createModel(NAME, { numClasses: 3, inputSize: SIZE }).loadCheckpoint(join(dir, 'model.safetensors'));
    const nodeLogits = (await loaded.run({ shape: [PHOTOS.length, 3, SIZE, SIZE], data: evalData })).logits.data;
    const pageLogits = Float32Array.from(r.logits);
    assert.ok(relError(pageLogits, nodeLogits) < 1e-4, `saved safetensors in Node: rel err ${relError(pageLogits, nodeLogits)}`);
    const trained = (await model.run({ shape: [PHOTOS.length, 3, SIZE, SIZE], data: evalData })).logits.data;
    assert.ok(relError(pageLogits, trained) < 5e-3, `page-trained vs Node-trained logits: rel err ${relError(pageLogits, trained)}`);
    const onnxOut = (await runSession(await createSession(new Uint8Array(Buffer.from(r.onnx, 'base64'))), { shape: [PHOTOS.length, 3, SIZE, SIZE], data: evalData }))['logits']!.data;
    assert.ok(relError(onnxOut, nodeLogits) < 1e-4);
    assert.deepEqual(new Set(r.top.map((x) => x.label)), new Set(CLASSES));
    assert.equal(r.reloaded.length, PHOTOS.length * 3);
    assert.ok(relError(Float32Array.from(r.reloaded), pageLogits) < 1e-6, 'the saved safetensors, reloaded in the page');
    assert.equal(loadSafetensors(join(dir, 'model.safetensors')).size, model.parameters().length);
    t.diagnostic(`losses page ${r.losses.map((l) => l.toFixed(5)).join(', ')} / Node ${nodeLosses.map((l) => l.toFixed(5)).join(', ')}`);
  });
});

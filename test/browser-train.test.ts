/**
 * Training in a real browser: the training graph Node builds for resnet18 (64×64) runs in onnxruntime-web (wasm)
 * in Debian's Chromium, with the same host step (src/train/engine.ts); three SGD steps give Node's losses.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { chromium } from 'playwright-core';
import { createModel } from '../src/model.js';
import { trainingBundle } from '../src/train/bundle.js';
import { buildWeb } from '../web/build.js';
import { fixtureInput } from './helpers/fixtures.js';
import { CHROMIUM, FLAGS, NO_CHROMIUM } from './helpers/chromium.js';
import { describeOrSkip } from './helpers/skip.js';
import { servePages } from './helpers/web-server.js';

const SIZE = 64;
const N = 4;
const TARGETS = [3, 7, 1, 8];
const OPTS = { optimizer: 'sgd' as const, lr: 0.002, momentum: 0.9, weightDecay: 1e-4, labelSmoothing: 0.1, batchNorm: 'train' as const };

const dir = mkdtempSync(join(tmpdir(), 'tsimm-webtrain-'));
const files = new Map<string, { body: Uint8Array | string; type: string }>();
let server: Server;
let base: string;
let nodeLosses: number[] = [];

const page = `<!doctype html><meta charset="utf-8">
<script type="importmap">{ "imports": { "onnxruntime-web": "/ort/ort.webgpu.min.mjs" } }</script>
<script type="module">
  import * as tsimm from '/tsimm-web.js';
  try {
    const spec = await (await fetch('/spec.json')).json();
    const weights = new Float32Array(await (await fetch('/weights.bin')).arrayBuffer());
    const x = new Float32Array(await (await fetch('/x.bin')).arrayBuffer());
    const { engine } = await tsimm.loadTrainer('/train.onnx', spec, weights, { ...${JSON.stringify(OPTS)}, threads: 2, wasmPaths: '/ort/' });
    const losses = [];
    for (let i = 0; i < 3; i++) losses.push((await engine.step({ data: x, dims: [${N}, 3, ${SIZE}, ${SIZE}] }, ${JSON.stringify(TARGETS)})).loss);
    window.__result = { losses };
  } catch (e) {
    window.__result = { error: String(e && e.stack || e) };
  }
</script>`;

before(async () => {
  if (NO_CHROMIUM) return;
  await buildWeb(join(dir, 'tsimm-web.js'));
  const model = createModel('resnet18', { inputSize: SIZE, numClasses: 10 }).initWeights(7);
  // Tame the random init (no checkpoint here) so three steps stay in a well-conditioned region.
  for (const p of model.parameters()) if (p.shape.length === 4) model.weights!.get(p.name)!.forEach((v, i, a) => (a[i] = v * 0.5));
  const x = fixtureInput([N, 3, SIZE, SIZE], 17);
  const trainer = model.trainer(OPTS);
  const bundle = trainingBundle(trainer);
  for (let i = 0; i < 3; i++) nodeLosses.push((await trainer.step(x, TARGETS)).loss);
  await trainer.release();
  files.set('/index.html', { body: page, type: 'text/html' });
  files.set('/tsimm-web.js', { body: readFileSync(join(dir, 'tsimm-web.js')), type: 'text/javascript' });
  files.set('/train.onnx', { body: bundle.onnx, type: 'application/octet-stream' });
  files.set('/spec.json', { body: JSON.stringify(bundle.spec), type: 'application/json' });
  files.set('/weights.bin', { body: new Uint8Array(bundle.weights.buffer), type: 'application/octet-stream' });
  files.set('/x.bin', { body: new Uint8Array(x.data.buffer), type: 'application/octet-stream' });
  ({ base, server } = await servePages(files));
});

after(() => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describeOrSkip('training in Chromium (onnxruntime-web, wasm)', NO_CHROMIUM, () => {
  it("three SGD steps of resnet18 at 64×64 give Node's losses within 1e-4", async (t) => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, '--disable-gpu'] });
    try {
      const p = await browser.newPage();
      await p.goto(`${base}/index.html`);
      await p.waitForFunction(() => (window as unknown as { __result?: unknown }).__result, undefined, { timeout: 300_000 });
      const r = await p.evaluate(() => (window as unknown as { __result: { losses?: number[]; error?: string } }).__result);
      assert.equal(r.error, undefined, r.error);
      const rel = r.losses!.map((l, i) => Math.abs(l - nodeLosses[i]!) / Math.abs(nodeLosses[i]!));
      t.diagnostic(`node ${nodeLosses.map((l) => l.toFixed(6)).join(', ')}; browser ${r.losses!.map((l) => l.toFixed(6)).join(', ')}; max rel ${Math.max(...rel).toExponential(2)}`);
      assert.ok(nodeLosses[2]! < nodeLosses[0]!, 'the loss falls over the three steps');
      for (const e of rel) assert.ok(e < 1e-4, `browser loss differs by ${e}`);
    } finally {
      await browser.close();
    }
  });
});

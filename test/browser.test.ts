/**
 * tsimm in a real browser: Debian's Chromium driven by playwright-core, pages served from 127.0.0.1. The
 * browser bundle preprocesses the same pixels to the same tensor as Node (bit for bit), and onnxruntime-web
 * (wasm; WebGPU on SwiftShader when Chromium offers an adapter) gives the logits onnxruntime-node gives.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { fromRgba, normalize, resolvePreprocess, transformImage } from '../src/data/transforms.js';
import { createModel } from '../src/model.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { buildWeb } from '../web/build.js';
import { CHROMIUM, FLAGS, NO_CHROMIUM, WEBGPU_FLAGS } from './helpers/chromium.js';
import { describeOrSkip } from './helpers/skip.js';
import { servePages } from './helpers/web-server.js';

const SIZE = 48;

const dir = mkdtempSync(join(tmpdir(), 'tsimm-web-'));
let server: Server;
let base: string;
const files = new Map<string, { body: Uint8Array | string; type: string }>();
const W = 90;
const H = 70;
let rgba: Uint8Array;
let config: ReturnType<typeof resolvePreprocess>;
let nodeInput: Float32Array;
let nodeLogits: Float32Array;

const page = (ep: string) => `<!doctype html><meta charset="utf-8">
<script type="importmap">{ "imports": { "onnxruntime-web": "/ort/ort.webgpu.min.mjs" } }</script>
<script type="module">
  import * as tsimm from '/tsimm-web.js';
  try {
    const config = await (await fetch('/config.json')).json();
    const rgba = new Uint8Array(await (await fetch('/image.rgba')).arrayBuffer());
    const x = tsimm.preprocessRgba(rgba, ${W}, ${H}, config);
    const session = await tsimm.createSession('/model.onnx', { executionProviders: ['${ep}'], threads: 2, wasmPaths: '/ort/' });
    const logits = await tsimm.run(session, x, [1, 3, ${SIZE}, ${SIZE}]);
    window.__result = { x: Array.from(x), logits: Array.from(logits), isolated: self.crossOriginIsolated, top: tsimm.topk(logits, 3) };
  } catch (e) {
    window.__result = { error: String(e && e.stack || e) };
  }
</script>`;

before(async () => {
  if (NO_CHROMIUM) return;
  await buildWeb(join(dir, 'tsimm-web.js'));
  const raw = Buffer.from(Uint8Array.from({ length: W * H * 3 }, (_, i) => (Math.sin(i * 0.01) * 120 + 128 + (i % 7) * 3) & 0xff));
  rgba = new Uint8Array(await sharp(raw, { raw: { width: W, height: H, channels: 3 } }).ensureAlpha().raw().toBuffer());
  const model = createModel('resnet18', { inputSize: SIZE }).initWeights(5);
  config = resolvePreprocess(model.cfg, { size: SIZE });
  nodeInput = normalize(transformImage(fromRgba(rgba, W, H), config), config);
  const onnx = model.toOnnx({ outputs: ['logits'] });
  nodeLogits = (await runSession(await createSession(onnx), { shape: [1, 3, SIZE, SIZE], data: nodeInput }))['logits']!.data;
  files.set('/index-wasm.html', { body: page('wasm'), type: 'text/html' });
  files.set('/index-webgpu.html', { body: page('webgpu'), type: 'text/html' });
  files.set('/tsimm-web.js', { body: readFileSync(join(dir, 'tsimm-web.js')), type: 'text/javascript' });
  files.set('/model.onnx', { body: onnx, type: 'application/octet-stream' });
  files.set('/image.rgba', { body: rgba, type: 'application/octet-stream' });
  files.set('/config.json', { body: JSON.stringify(config), type: 'application/json' });
  ({ base, server } = await servePages(files));
});

after(async () => {
  server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function runPage(browser: Browser, url: string): Promise<{ x: number[]; logits: number[]; isolated: boolean; error?: string }> {
  const p = await browser.newPage();
  try {
    await p.goto(url);
    await p.waitForFunction(() => (window as unknown as { __result?: unknown }).__result, undefined, { timeout: 120_000 });
    return await p.evaluate(() => (window as unknown as { __result: { x: number[]; logits: number[]; isolated: boolean; error?: string } }).__result);
  } finally {
    await p.close();
  }
}

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / Math.max(1, m);
};

describeOrSkip('in Chromium', NO_CHROMIUM, () => {
  it('wasm: same preprocessed tensor (exactly) and the same logits as onnxruntime-node', async (t) => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, '--disable-gpu'] });
    try {
      const r = await runPage(browser, `${base}/index-wasm.html`);
      assert.equal(r.error, undefined, r.error);
      assert.ok(r.isolated, 'the page is cross-origin isolated (wasm threads)');
      assert.deepEqual(Float32Array.from(r.x), nodeInput);
      const e = relErr(r.logits, nodeLogits);
      t.diagnostic(`wasm vs onnxruntime-node logits: ${e.toExponential(2)}`);
      assert.ok(e < 1e-4, `logits rel error ${e}`);
    } finally {
      await browser.close();
    }
  });

  it('webgpu (SwiftShader): the same logits, where Chromium offers an adapter', async (t) => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, ...WEBGPU_FLAGS] });
    try {
      const r = await runPage(browser, `${base}/index-webgpu.html`);
      if (r.error && /adapter|webgpu is not supported|navigator\.gpu/i.test(r.error)) {
        t.skip(`no WebGPU adapter in this Chromium: ${r.error.split('\n')[0]}`);
        return;
      }
      assert.equal(r.error, undefined, r.error);
      const e = relErr(r.logits, nodeLogits);
      t.diagnostic(`webgpu vs onnxruntime-node logits: ${e.toExponential(2)}`);
      assert.ok(e < 1e-3, `logits rel error ${e}`);
    } finally {
      await browser.close();
    }
  });
});

/**
 * One core for Node and the page (issue 18, part 1). The page's bundle (tsimm-web.js and its worker) is built for
 * platform 'browser' with every Node built-in refused, and every src file outside the Node side builds the same
 * way. In Chromium, every seed model's graph is built in the page, and the models that fit a test's budget run
 * there with the logits onnxruntime-node gives on the same weights.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, it } from 'node:test';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createModel } from '../src/model.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { buildWebBundles } from '../web/build.js';
import { CHROMIUM, FLAGS, NO_CHROMIUM } from './helpers/chromium.js';
import { fixtureInput, REPO, relError } from './helpers/fixtures.js';
import { describeOrSkip } from './helpers/skip.js';
import { servePages, type PageFiles } from './helpers/web-server.js';

/** The Node side: adapters and what drives them (CLI, server, tasks, datasets, the Node Model and trainer). */
const NODE_SIDE = [
  /^src\/node\//,
  /^src\/runtime\//,
  /^src\/cli\//,
  /^src\/serve\//,
  /^src\/tasks\//,
  /^src\/(model|index)\.ts$/,
  /^src\/data\/(datasets|idx|loader|pool|worker|train-worker|preprocess|labels|train-transform)\.ts$/,
  /^src\/train\/(fit|trainer|run-config)\.ts$/,
];

function srcFiles(dir = join(REPO, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? srcFiles(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
}

const dir = mkdtempSync(join(tmpdir(), 'tsimm-web-core-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it("the page's bundle reaches no Node built-in, and no Node-side file", async (t) => {
  const r = await buildWebBundles(join(dir, 'tsimm-web.js'), { minify: true });
  const inputs = Object.keys(r.metafile.inputs);
  const nodeSide = inputs.filter((f) => NODE_SIDE.some((re) => re.test(f)));
  assert.deepEqual(nodeSide, [], `the page bundle includes Node-side files: ${nodeSide.join(', ')}`);
  assert.ok(inputs.some((f) => f.startsWith('src/models/')) && inputs.some((f) => f.startsWith('src/onnx/')) && inputs.some((f) => f.startsWith('src/weights/')));
  const main = readFileSync(r.main);
  const worker = readFileSync(r.worker);
  t.diagnostic(`minified: tsimm-web.js ${main.length} B (${gzipSync(main).length} B gzipped), tsimm-worker.js ${worker.length} B (${gzipSync(worker).length} B gzipped)`);
});

it('every src file outside the Node side builds for the browser', async () => {
  const core = srcFiles().map((f) => relative(REPO, f)).filter((f) => !NODE_SIDE.some((re) => re.test(f)));
  assert.ok(core.length > 40, `only ${core.length} core files found`);
  const entry = join(REPO, 'web', `.core-entry-${process.pid}.ts`);
  writeFileSync(entry, core.map((f) => `import '../${f.replace(/\.ts$/, '.js')}';`).join('\n'));
  try {
    const res = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', plugins: [(await import('../web/build.js')).noNodeBuiltins] });
    assert.equal(res.errors.length, 0);
  } finally {
    rmSync(entry, { force: true });
  }
});

it('the guard itself refuses a Node adapter', async () => {
  const { noNodeBuiltins } = await import('../web/build.js');
  await assert.rejects(
    build({ entryPoints: [join(REPO, 'src/node/fileio.ts')], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', plugins: [noNodeBuiltins] }),
    /src\/node\/fileio\.ts imports the Node built-in "node:fs"/,
  );
});

const SEEDS = Object.keys(JSON.parse(readFileSync(join(REPO, 'data/seed-models.json'), 'utf8')) as Record<string, unknown>).sort();
/** Models run in the page at this size, up to this many parameters (the rest are built and counted only). */
/** timm's published rows of the newer families (MobileNetV3, EfficientNetV2, ConvNeXt, ViT/DeiT). */
const MODERN = Object.keys(JSON.parse(readFileSync(join(REPO, 'data/seed-models-timm-modern.json'), 'utf8')) as Record<string, unknown>).sort();
const RUN_SIZE = 64;
const RUN_MAX_PARAMS = Number(process.env['TSIMM_WEB_RUN_MAX_PARAMS'] ?? 30e6);

describeOrSkip('the zoo in Chromium', NO_CHROMIUM, () => {
  let browser: Browser;
  let server: Server;
  let page: Page;
  before(async () => {
    const r = await buildWebBundles(join(dir, 'page', 'tsimm-web.js'));
    const files: PageFiles = new Map();
    files.set('/tsimm-web.js', { body: readFileSync(r.main), type: 'text/javascript' });
    files.set('/tsimm-worker.js', { body: readFileSync(r.worker), type: 'text/javascript' });
    files.set('/index.html', {
      type: 'text/html',
      body: `<!doctype html><meta charset="utf-8"><script type="importmap">{ "imports": { "onnxruntime-web": "/ort/ort.webgpu.min.mjs" } }</script>
<script type="module">import * as tsimm from '/tsimm-web.js'; window.tsimm = tsimm; window.__ready = true;</script>`,
    });
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
  });

  /** describeModel in the page for each name, checked against Node's counts. */
  async function buildInPage(names: string[]): Promise<void> {
    const inPage = await page.evaluate(async (names) => {
      const w = window as unknown as { tsimm: { describeModel(n: string): { params: number; macs: number } } };
      return names.map((n) => {
        try {
          const d = w.tsimm.describeModel(n);
          return { name: n, params: d.params, macs: d.macs };
        } catch (e) {
          return { name: n, error: String(e) };
        }
      });
    }, names);
    assert.deepEqual(inPage.filter((r) => 'error' in r), []);
    for (const r of inPage) {
      const c = createModel(r.name).counts();
      assert.equal(r.params, c.params, `${r.name}: params`);
      assert.equal(r.macs, c.macs, `${r.name}: MACs`);
    }
  }

  /** The model on random weights (seed 7) in the page, wasm, against onnxruntime-node on the same weights. */
  async function runInPage(name: string): Promise<void> {
    const input = fixtureInput([1, 3, RUN_SIZE, RUN_SIZE], 3);
    const node = createModel(name, { inputSize: RUN_SIZE }).initWeights(7);
    const session = await createSession(node.toOnnx({ outputs: ['logits'] }));
    const want = (await runSession(session, input))['logits']!.data;
    await session.release();
    const got = await page.evaluate(
      async ({ name, size, data }) => {
        const w = window as unknown as { tsimm: { createModel(n: string, o: object): Promise<{ run(x: object): Promise<{ logits: Float32Array }>; dispose(): Promise<void> }> } };
        try {
          const m = await w.tsimm.createModel(name, { seed: 7, inputSize: size, device: 'wasm' });
          const { logits } = await m.run({ data: new Float32Array(data), shape: [1, 3, size, size] });
          await m.dispose();
          return { logits: Array.from(logits) };
        } catch (e) {
          return { error: `${(e as Error).message}` };
        }
      },
      { name, size: RUN_SIZE, data: Array.from(input.data) },
    );
    assert.ok(!('error' in got), `${name}: ${got.error}`);
    const err = relError(Float32Array.from(got.logits!), want);
    assert.ok(err < 1e-4, `${name}: page vs onnxruntime-node relative error ${err}`);
  }

  it(`builds all ${SEEDS.length} seed models in the page, with Node's parameter counts`, async (t) => {
    assert.equal(SEEDS.length, 70);
    await buildInPage(SEEDS);
    t.diagnostic(`${SEEDS.length} of ${SEEDS.length} built in the page`);
  });

  it(`runs the seed models up to ${RUN_MAX_PARAMS / 1e6}M parameters in the page (wasm, ${RUN_SIZE}px) with onnxruntime-node's logits`, async (t) => {
    let ran = 0;
    for (const name of SEEDS) {
      if (createModel(name, { inputSize: RUN_SIZE }).counts().params > RUN_MAX_PARAMS) continue;
      await runInPage(name);
      ran++;
    }
    t.diagnostic(`${ran} of ${SEEDS.length} seed models ran in the page`);
    assert.ok(ran >= 30, `only ${ran} ran`);
  });

  it(`builds the ${MODERN.length} newer-family names in the page and runs one of each family (HardSwish, LayerNorm, GELU, attention)`, async () => {
    assert.ok(MODERN.length >= 56);
    await buildInPage(MODERN);
    for (const name of ['mobilenetv3_small_100', 'tf_efficientnetv2_b0', 'convnext_atto', 'convnextv2_atto', 'vit_tiny_patch16_224', 'deit_tiny_distilled_patch16_224']) await runInPage(name);
  });
});

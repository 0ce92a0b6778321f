/**
 * `tsimm studio` (issue 18, part 7): the teachable-machine page, served by the CLI as a child process and driven in
 * Chromium through its own controls. Webcam frames come from Chromium's fake camera; the training images are
 * Fashion-MNIST PNGs (Debian's dataset-fashion-mnist) given through the class's file input; the page trains a
 * random-init regnetx_002 at 64 px and must classify held-out images well above chance; what it downloads runs in
 * `tsimm predict --weights` with the page's own top-1.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { fashionMnistDir, FASHION_MNIST_CLASSES, findIdxFiles, readIdxPair } from '../src/data/idx.js';
import { createModel } from '../src/model.js';
import { resolveModel } from '../src/models/index.js';
import { loadSafetensors } from '../src/node/safetensors.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { timmInit } from '../src/train/init.js';
import { CHROMIUM, FLAGS, NO_CHROMIUM } from './helpers/chromium.js';
import { runCli } from './helpers/cli.js';
import { REPO } from './helpers/fixtures.js';
import { describeOrSkip } from './helpers/skip.js';

const FASHION = fashionMnistDir();
const NO_FASHION: string | false = FASHION ? false : 'Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)';
/** Three easily told apart classes, by Fashion-MNIST label. */
const CLASSES = [1, 7, 8];
const TRAIN_PER_CLASS = 12;
const HELD_OUT_PER_CLASS = 10;

/** Scratch folder of the run (made in `before`, so a skipped suite leaves nothing behind). */
let dir: string;
const name = (c: number) => FASHION_MNIST_CLASSES[c]!.replace(/[^A-Za-z]+/g, '-');

/** The first test-split images of each class as PNGs: train/<class>/N.png and held/<class>/N.png. */
async function writeImages(): Promise<{ train: Map<number, string[]>; held: { file: string; label: string }[] }> {
  const files = findIdxFiles(FASHION!, 'test');
  const pair = await readIdxPair(files.images, files.labels, { limit: 600 });
  const { height: h, width: w } = pair;
  const train = new Map<number, string[]>(CLASSES.map((c) => [c, []]));
  const held: { file: string; label: string }[] = [];
  for (let i = 0; i < pair.count; i++) {
    const c = pair.labels.data[i]!;
    if (!CLASSES.includes(c)) continue;
    const t = train.get(c)!;
    const heldOf = held.filter((x) => x.label === name(c)).length;
    if (t.length >= TRAIN_PER_CLASS && heldOf >= HELD_OUT_PER_CLASS) continue;
    const sub = t.length < TRAIN_PER_CLASS ? 'train' : 'held';
    const file = join(dir, sub, `${i}_${name(c)}.png`);
    mkdirSync(join(dir, sub), { recursive: true });
    const px = Buffer.from(pair.images.data.buffer, pair.images.data.byteOffset + i * h * w, h * w);
    writeFileSync(file, await sharp(px, { raw: { width: w, height: h, channels: 1 } }).png().toBuffer());
    if (sub === 'train') t.push(file);
    else held.push({ file, label: name(c) });
  }
  return { train, held };
}

/**
 * A hub on 127.0.0.1 with Hugging Face's layout and CORS (the page's origin differs): regnetx_002's "pretrained"
 * weights are timm-initialised random ones saved by Node, what matters here is that the page fetches them.
 */
async function startHub(requests: string[]): Promise<{ server: Server; url: string }> {
  const model = createModel('regnetx_002');
  model.weights = timmInit(model.fullGraph, model.entry.family, 3);
  const file = join(dir, 'hub.safetensors');
  model.saveSafetensors(file);
  const root = `/${resolveModel('regnetx_002').cfg.weights!.hfHubId}/resolve/main`;
  const files = new Map<string, Buffer>([
    [`${root}/model.safetensors`, readFileSync(file)],
    [`${root}/config.json`, Buffer.from(JSON.stringify({ architecture: 'regnetx_002', num_classes: 1000 }))],
  ]);
  const server = createServer((req, res) => {
    requests.push(`${req.headers.origin} ${req.url}`);
    const body = files.get(req.url!);
    res.writeHead(body ? 200 : 404, { 'access-control-allow-origin': '*', 'content-length': body?.byteLength ?? 0 }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** `tsimm studio` from the sources, as a user runs it; resolves with its URL once it listens. */
function startStudio(args: string[]): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(REPO, 'src/cli/main.ts'), 'studio', ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, stderr: () => err });
    });
    child.once('exit', (code) => reject(new Error(`tsimm studio exited with ${code}: ${err}`)));
  });
}

describeOrSkip('tsimm studio in Chromium', NO_CHROMIUM || NO_FASHION, () => {
  let browser: Browser;
  let page: Page;
  let studio: Awaited<ReturnType<typeof startStudio>>;
  let images: Awaited<ReturnType<typeof writeImages>>;
  let hub: Awaited<ReturnType<typeof startHub>>;
  const hubRequests: string[] = [];
  const card = (i: number) => page.locator('.class').nth(i);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsimm-studio-'));
    hub = await startHub(hubRequests);
    [images, studio] = await Promise.all([writeImages(), startStudio(['--port', '0', '--hub-url', hub.url])]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...FLAGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] });
    page = await browser.newPage({ acceptDownloads: true });
    await page.goto(studio.url);
    await page.waitForSelector('body[data-ready="true"]');
  });
  after(async () => {
    await browser?.close();
    if (studio?.child.exitCode === null) {
      // SIGTERM, so that it removes its scratch folder (when the SIGTERM test was filtered out or failed).
      const exited = new Promise((res) => studio.child.once('exit', res));
      studio.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((res) => setTimeout(res, 5000).unref())]);
      if (studio.child.exitCode === null) studio.child.kill('SIGKILL');
    }
    hub?.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records frames from the webcam into a class', async () => {
    await page.click('#add-class');
    const cls = card(2);
    await page.click('#cam-start');
    await page.waitForSelector('#cam-start[data-ready="true"]');
    const snap = cls.locator('.snap');
    for (let i = 0; i < 2; i++) await snap.click(); // a click: one frame each
    await cls.locator('.count[data-count="2"]').waitFor();
    // Held: a frame now and every 100 ms until released.
    await snap.hover();
    await page.mouse.down();
    await page.waitForTimeout(600);
    await page.mouse.up();
    await page.waitForTimeout(200);
    const frames = await page.evaluate(() => {
      const studio = (window as unknown as { studio: { classes: { images: unknown[] }[] } }).studio;
      return studio.classes[2]!.images.map((img) => {
        if (!(img instanceof ImageBitmap)) return { kind: String(img) };
        const c = new OffscreenCanvas(img.width, img.height);
        const ctx = c.getContext('2d')!;
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, img.width, img.height).data;
        const values = new Set<number>();
        for (let i = 0; i < d.length; i += 4 * 97) values.add(d[i]! + 256 * d[i + 1]! + 65536 * d[i + 2]!);
        return { kind: 'ImageBitmap', width: img.width, height: img.height, colours: values.size };
      });
    });
    assert.ok(frames.length >= 4, `2 clicks and a 600 ms hold gave ${frames.length} frames`);
    const count = await cls.locator('.count').getAttribute('data-count');
    assert.equal(Number(count), frames.length);
    for (const f of frames) {
      assert.equal(f.kind, 'ImageBitmap');
      // Chromium's fake camera is 640×480: kept at a 256 px short side.
      assert.deepEqual([f.width, f.height], [341, 256]);
      assert.ok(f.colours! > 3, `a frame of ${f.colours} colours is not the camera's picture`);
    }
    assert.equal(await cls.locator('.thumbs canvas').count(), frames.length);
    await cls.locator('.remove').click();
    assert.equal(await page.locator('.class').count(), 2);
  });

  it('fine-tunes on picked Fashion-MNIST images and classifies held-out ones well above chance', async (t) => {
    await page.click('#add-class');
    for (const [i, c] of CLASSES.entries()) {
      await card(i).locator('.name').fill(name(c));
      await card(i).locator('input.files').setInputFiles(images.train.get(c)!);
      await card(i).locator(`.count[data-count="${TRAIN_PER_CLASS}"]`).waitFor();
    }
    await page.fill('#model', 'regnetx_002');
    await page.selectOption('#weights', 'random');
    await page.selectOption('#size', '64');
    await page.fill('#epochs', '10');
    await page.fill('#batch', '12');
    await page.fill('#lr', '0.003');
    await page.click('#train');
    await page.waitForSelector('#status[data-state="trained"], #status[data-state="failed"]', { timeout: 120_000 });
    const status = await page.textContent('#status');
    assert.equal(await page.getAttribute('#status', 'data-state'), 'trained', status!);
    t.diagnostic(status!);
    const history = await page.evaluate(() => (window as unknown as { studio: { history: { loss: number; acc: number }[] } }).studio.history);
    assert.equal(history.length, 30);
    assert.ok(history.at(-1)!.loss < history[0]!.loss, `loss ${history[0]!.loss} → ${history.at(-1)!.loss}`);
    // The plot is drawn: the canvas holds the loss line's colour.
    const red = await page.evaluate(() => {
      const c = document.querySelector<HTMLCanvasElement>('#plot')!;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i]! > 180 && d[i + 1]! < 100 && d[i + 3]! > 0) n++;
      return n;
    });
    assert.ok(red > 100, `the loss line has ${red} pixels`);
    assert.equal(await page.getAttribute('#progress', 'value'), '1');

    await page.setInputFiles('#try-files', images.held.map((h) => h.file));
    await page.waitForSelector(`#try-out[data-done="${images.held.length}"]`);
    const got = await page.$$eval('#try-out li', (lis) => lis.map((li) => ({ file: li.dataset['file'], label: li.dataset['label'], error: li.dataset['error'] })));
    const right = got.filter((g, i) => g.label === images.held[i]!.label).length;
    const accuracy = right / images.held.length;
    t.diagnostic(`held-out accuracy ${(100 * accuracy).toFixed(0)}% on ${images.held.length} images of ${CLASSES.length} classes (chance 33%)`);
    assert.ok(!got.some((g) => g.error), JSON.stringify(got.find((g) => g.error)));
    assert.ok(accuracy >= 0.7, `held-out accuracy ${accuracy}`);

    // Live: the fake camera's frames, classified continuously into the three classes until stopped.
    await page.click('#live');
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('#live-out')!.dataset['frames']) >= 3);
    await page.click('#live');
    const bars = await page.$$eval('#live-out > div', (rows) => rows.map((r) => ({ label: (r as HTMLElement).dataset['label']!, p: parseFloat(r.querySelector('.p')!.textContent!) })));
    assert.deepEqual(bars.map((b) => b.label).sort(), CLASSES.map(name).sort());
    assert.ok(Math.abs(bars.reduce((a, b) => a + b.p, 0) - 100) < 0.5, JSON.stringify(bars));
  });

  it("downloads model.safetensors + config.json that `tsimm predict --weights` runs with the page's top-1, and model.onnx", async () => {
    const out = join(dir, 'download');
    mkdirSync(out);
    for (const [what, file] of [['safetensors', 'model.safetensors'], ['config', 'config.json'], ['onnx', 'model.onnx']] as const) {
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(`.save[data-what="${what}"]`)]);
      assert.equal(download.suggestedFilename(), file);
      await download.saveAs(join(out, file));
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { architecture: string; class_names: string[]; input_size: number[] };
    assert.deepEqual([config.architecture, config.class_names, config.input_size], ['regnetx_002', CLASSES.map(name), [3, 64, 64]]);
    const li = page.locator('#try-out li').first();
    const pageTop = { label: await li.getAttribute('data-label'), prob: Number(await li.getAttribute('data-prob')) };
    const image = images.held[0]!.file;
    const r = runCli(out, ['predict', 'regnetx_002', image, '--weights', 'model.safetensors', '--topk', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const [pred] = (JSON.parse(r.stdout) as { predictions: { label: string; prob: number }[] }[])[0]!.predictions;
    assert.equal(pred!.label, pageTop.label);
    assert.ok(Math.abs(pred!.prob - pageTop.prob) < 1e-3, `Node ${pred!.prob} vs page ${pageTop.prob}`);
    const session = await createSession(readFileSync(join(out, 'model.onnx')));
    const y = await runSession(session, { shape: [2, 3, 64, 64], data: new Float32Array(2 * 3 * 64 * 64) });
    assert.deepEqual(y['logits']!.shape, [2, CLASSES.length]);
    await session.release();
  });

  it("fetches pretrained weights from --hub-url's hub and trains the classifier only", async (t) => {
    assert.match((await page.textContent('#model-info'))!, new RegExp(`pretrained weights: ${hub.url}/timm/regnetx_002`));
    await page.selectOption('#weights', 'pretrained');
    await page.fill('#epochs', '1');
    await page.click('#train');
    await page.waitForSelector('#status[data-state="trained"], #status[data-state="failed"]', { timeout: 60_000 });
    const status = (await page.textContent('#status'))!;
    assert.equal(await page.getAttribute('#status', 'data-state'), 'trained', status);
    t.diagnostic(status);
    assert.match(status, /\(the classifier only, pretrained\)/);
    const origin = new URL(studio.url).origin;
    const root = `/${resolveModel('regnetx_002').cfg.weights!.hfHubId}/resolve/main`;
    assert.deepEqual(hubRequests.sort(), [`${origin} ${root}/config.json`, `${origin} ${root}/model.safetensors`]);
  });

  it("tsimm/web as the page uses it: init 'timm' is Node's timmInit; step's lr is the one used", async () => {
    type T = typeof import('../web/tsimm-web.js');
    await page.evaluate('window.__name = (f) => f'); // tsx names the closures below with a helper the page lacks
    const r = await page.evaluate(async () => {
      const tsimm = (await import('tsimm/web' as string)) as T;
      const m = await tsimm.createModel('regnetx_002', { init: 'timm', seed: 4, numClasses: 3, inputSize: 32, device: 'wasm' });
      const initial = await m.saveSafetensors();
      const trainer = await m.trainer({ optimizer: 'adamw', lr: 0.1, weightDecay: 0.05, batchNorm: 'frozen' }); // no running statistics to update
      const batch = () => m.preprocessBatch([new ImageData(new Uint8ClampedArray(32 * 32 * 4).fill(200), 32, 32), new ImageData(32, 32)]);
      const still = await trainer.step(await batch(), [0, 1], { lr: 0 });
      const after = await m.saveSafetensors();
      const same = after.length === initial.length && after.every((b, i) => b === initial[i]);
      const moved = await trainer.step(await batch(), [0, 1], { lr: 1e-3 });
      const kept = await trainer.step(await batch(), [0, 1]);
      await m.dispose();
      // 11 MB back to Node as base64 (a JSON array of numbers that long takes a minute).
      const url = await new Promise<string>((res) => {
        const reader = new FileReader();
        reader.onload = () => res(reader.result as string);
        reader.readAsDataURL(new Blob([initial as Uint8Array<ArrayBuffer>]));
      });
      return { initial: url.slice(url.indexOf(',') + 1), lrs: [still.lr, moved.lr, kept.lr], same };
    });
    writeFileSync(join(dir, 'init.safetensors'), Buffer.from(r.initial, 'base64'));
    const inPage = loadSafetensors(join(dir, 'init.safetensors'));
    const node = createModel('regnetx_002', { numClasses: 3, inputSize: 32 });
    const want = timmInit(node.fullGraph, node.entry.family, 4);
    assert.equal(inPage.size, want.size);
    for (const [k, v] of want) assert.deepEqual(inPage.get(k)?.data, v, k);
    assert.ok(r.same, 'a step at lr 0 left the weights as they were');
    assert.deepEqual(r.lrs, [0, 1e-3, 1e-3]);
  });

  it('bad options: usage errors exit 2, a port in use exits 1, each with one line naming the fix', () => {
    const bad = runCli(dir, ['studio', '--hub-url', 'ftp://mirror']);
    assert.deepEqual([bad.code, bad.stderr], [2, 'tsimm studio: error: --hub-url must be an http(s) URL, got "ftp://mirror" (see tsimm studio --help)\n']);
    const port = new URL(hub.url).port;
    const busy = runCli(dir, ['studio', '--port', port]);
    assert.deepEqual([busy.code, busy.stderr], [1, `tsimm studio: error: port ${port} is in use; pick another with --port (0 picks a free one)\n`]);
    assert.equal(busy.stdout, '');
  });

  it('--out writes the same page for a static host; SIGTERM stops the server cleanly', async () => {
    const site = join(dir, 'site');
    const r = runCli(dir, ['studio', '--out', site]);
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['index.html', 'app.js']) assert.deepEqual(readFileSync(join(site, f)), readFileSync(join(REPO, 'examples/teachable', f)));
    for (const f of ['tsimm-web.js', 'tsimm-worker.js', 'ort/ort.webgpu.min.mjs']) {
      const served = Buffer.from(await (await fetch(new URL(f, studio.url))).arrayBuffer());
      assert.ok(served.equals(readFileSync(join(site, f))), `${f} differs from what the server sends`);
    }
    assert.ok(r.stdout.split('\n').some((l) => /ort-wasm-.*\.wasm$/.test(l)), r.stdout);
    assert.equal(runCli(dir, ['studio', '--out', site]).code, 1, 'a non-empty --out is refused');
    const exited = new Promise<number | null>((res) => studio.child.once('exit', (code) => res(code)));
    studio.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.match(studio.stderr(), /SIGTERM: stopped/);
  });
});

/**
 * The demo page at `/`: pick or drop an image; the server classifies it (POST /classify) and the page runs the
 * same ONNX model itself with tsimm/web (onnxruntime-web: WebGPU when the browser has an adapter, else wasm),
 * side by side. Its assets: the tsimm/web bundle, onnxruntime-web's files, and each model's ONNX file.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServedModel } from './server.js';

const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** onnxruntime-web's dist folder, or undefined when the optional peer dependency is not installed. */
function ortWebDir(): string | undefined {
  try {
    return dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));
  } catch {
    return undefined;
  }
}

let bundle: Promise<string> | undefined;
/** The tsimm/web bundle: the built one (dist/web), or built once from the sources when run through tsx. */
function webBundle(): Promise<string> {
  bundle ??= (async () => {
    // Run from the sources, the bundle is rebuilt so the page sees the current code.
    const built = fileURLToPath(new URL('../web/tsimm-web.js', import.meta.url));
    if (!FROM_SOURCES && existsSync(built)) return built;
    const { buildWeb } = (await import(new URL('../../web/build.ts', import.meta.url).href)) as { buildWeb: (o: string) => Promise<string> };
    return buildWeb(join(tmpdir(), `tsimm-serve-web-${process.pid}.js`));
  })();
  return bundle;
}

const TYPES: Record<string, string> = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.map': 'application/json' };

export async function demoAsset(parts: string[], models: Map<string, ServedModel>): Promise<{ body: Buffer; type: string } | undefined> {
  if (parts[0] === 'onnx' && parts.length === 3 && parts[2]!.endsWith('.onnx')) {
    const file = models.get(parts[1]!)?.onnxFiles[parts[2]!.slice(0, -5) as 'fp32'];
    if (!file || !existsSync(file)) return undefined;
    return { body: await readFile(file), type: 'application/octet-stream' };
  }
  if (parts[0] !== 'demo') return undefined;
  if (parts.length === 2 && parts[1] === 'tsimm-web.js') return { body: await readFile(await webBundle()), type: 'text/javascript' };
  if (parts.length === 3 && parts[1] === 'ort') {
    const dir = ortWebDir();
    const name = parts[2]!;
    const ext = name.slice(name.lastIndexOf('.'));
    if (!dir || !/^[\w.-]+$/.test(name) || !TYPES[ext]) return undefined;
    const file = join(dir, name);
    if (!(await stat(file).catch(() => undefined))?.isFile()) return undefined;
    return { body: await readFile(file), type: TYPES[ext]! };
  }
  return undefined;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function demoPage(models: string[]): string {
  const inBrowser = ortWebDir() !== undefined;
  return `<!doctype html>
<html lang="en"><meta charset="utf-8"><title>tsimm serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222 }
  #drop { border: 2px dashed #999; border-radius: 8px; padding: 1.5rem; text-align: center; }
  #drop.over { background: #eef; }
  #preview { max-height: 12rem; display: block; margin: 1rem auto; }
  .cols { display: flex; gap: 2rem; } .cols > section { flex: 1; }
  table { border-collapse: collapse; width: 100%; } td { padding: 2px 6px; border-bottom: 1px solid #eee; }
  td.p { text-align: right; font-variant-numeric: tabular-nums; } .muted { color: #777; }
  #agree { font-weight: bold; margin-top: 1rem; }
</style>
<script type="importmap">{ "imports": { "onnxruntime-web": "/demo/ort/ort.webgpu.min.mjs" } }</script>
<h1>tsimm serve</h1>
<p>Model <select id="model">${models.map((m) => `<option>${escape(m)}</option>`).join('')}</select>
  <span id="meta" class="muted"></span></p>
<div id="drop">Drop an image here, or <input type="file" id="file" accept="image/*"></div>
<img id="preview" alt="">
<div class="cols">
  <section><h2>Server</h2><div id="server-status" class="muted">waiting for an image</div><table id="server"></table></section>
  <section><h2>In this page</h2><div id="browser-status" class="muted">${inBrowser ? 'waiting for an image' : 'onnxruntime-web is not installed beside the server, so the page cannot run the model itself'}</div><table id="browser"></table></section>
</div>
<div id="agree"></div>
<script type="module">
const $ = (id) => document.getElementById(id);
const IN_BROWSER = ${inBrowser};
const sessions = new Map();
const metas = new Map();
let tsimm;
async function meta(model) {
  if (!metas.has(model)) metas.set(model, fetch('/v2/models/' + encodeURIComponent(model)).then((r) => r.json()));
  return metas.get(model);
}
function show(table, rows) {
  table.innerHTML = rows.map((r, i) => '<tr><td>' + (i + 1) + '.</td><td>' + r.label.replace(/[&<>]/g, '') + '</td><td class="p">' + (100 * r.prob).toFixed(2) + '%</td></tr>').join('');
}
async function onServer(model, file) {
  $('server-status').textContent = 'classifying…';
  const t0 = performance.now();
  const res = await fetch('/v2/models/' + encodeURIComponent(model) + '/classify?topk=5', { method: 'POST', body: file, headers: { 'content-type': file.type || 'application/octet-stream' } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error);
  const ms = performance.now() - t0;
  show($('server'), body.predictions);
  $('server-status').textContent = 'round trip ' + ms.toFixed(1) + ' ms (decode ' + body.timing.decode_ms + ', queue ' + body.timing.queue_ms + ', compute ' + body.timing.compute_ms + ' ms, batch of ' + body.batch + ')';
  return { predictions: body.predictions, ms };
}
async function onBrowser(model, file) {
  if (!IN_BROWSER) return undefined;
  $('browser-status').textContent = 'loading the model…';
  tsimm ??= await import('/demo/tsimm-web.js');
  const m = await meta(model);
  if (!sessions.has(model)) {
    // fp16 where WebGPU has shader-f16 (the graph --precision fp16 runs in Node), else fp32; WebGPU, else wasm.
    const files = m.parameters.browser_models;
    const pick = await tsimm.pickBackend(Object.keys(files).filter((p) => p !== 'int8'));
    const precision = files[pick.precision] ? pick.precision : Object.keys(files)[0];
    const eps = precision === 'int8' ? ['wasm'] : pick.executionProviders;
    sessions.set(model, tsimm.createSession(files[precision], { executionProviders: eps, wasmPaths: '/demo/ort/', threads: self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1 }).then((s) => ({ s, ep: eps[0], precision })));
  }
  const { s, ep, precision } = await sessions.get(model);
  const bitmap = await createImageBitmap(file, { imageOrientation: 'none', premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const t0 = performance.now();
  const pre = m.parameters.preprocess;
  const x = tsimm.preprocessRgba(rgba, bitmap.width, bitmap.height, pre);
  const [c, h, w] = m.inputs[0].shape.slice(1);
  const logits = await tsimm.run(s, x, [1, c, h, w]);
  const ms = performance.now() - t0;
  const labels = m.parameters.labels;
  const predictions = tsimm.topk(logits, 5).map((p) => ({ ...p, label: labels ? labels[p.index] : 'class ' + p.index }));
  show($('browser'), predictions);
  $('browser-status').textContent = ep + ' ' + precision + ': ' + ms.toFixed(1) + ' ms (preprocess + run)';
  return { predictions, ms, ep, precision, logits: Array.from(logits) };
}
async function classify(file) {
  const model = $('model').value;
  $('preview').src = URL.createObjectURL(file);
  $('agree').textContent = '';
  window.__demo = undefined;
  try {
    const [server, browser] = await Promise.all([onServer(model, file), onBrowser(model, file).catch((e) => ({ error: String(e && e.message || e) }))]);
    if (browser && browser.error) $('browser-status').textContent = 'failed: ' + browser.error;
    const same = browser && !browser.error && server.predictions.map((p) => p.index).join() === browser.predictions.map((p) => p.index).join();
    if (browser && !browser.error) $('agree').textContent = same ? 'The server and the page agree on the top-5.' : 'The server and the page differ.';
    window.__demo = { model, server, browser, agree: !!same };
  } catch (e) {
    $('server-status').textContent = 'failed: ' + (e && e.message || e);
    window.__demo = { error: String(e && e.message || e) };
  }
}
$('file').addEventListener('change', (e) => e.target.files[0] && classify(e.target.files[0]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); const f = e.dataTransfer.files[0]; if (f) classify(f); });
$('model').addEventListener('change', async () => { const m = await meta($('model').value); $('meta').textContent = m.parameters.architecture + ', input ' + m.inputs[0].shape.slice(1).join('×'); });
$('model').dispatchEvent(new Event('change'));
</script>
</html>
`;
}

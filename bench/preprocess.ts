/**
 * Exact preprocessing against PIL (benchmark, not a test): decode, bicubic resize and centre crop as timm's eval
 * transform (resnet50's 224 px at crop_pct 0.875: short side 256), tsimm (`decodeImage` with sharp, then
 * `resizePil` and `crop`, the kernels `preprocessImage` runs) beside PIL (`bench/tools/pil_preprocess.py`,
 * Debian's python3-pil), taking turns image by image in one run, on the photos in ../shared/data/images and on
 * a 4,000×3,000 JPEG made from one of them. Reports per image the minimum over reps (the steadiest figure on a
 * shared machine) and the ratio tsimm ÷ PIL for resize alone, decode alone and decode + resize + crop.
 *
 *   npx tsx bench/preprocess.ts [--reps 5] [--rounds 2] [--images DIR] [--no-save] [--tag NAME]
 *
 * Writes bench/results/vm/<date>-preprocess[-TAG].json with machine info and prints a Markdown table.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { decodeImage } from '../src/data/preprocess.js';
import { crop, resizePil } from '../src/data/resize.js';
import { machineInfo } from '../src/tasks/bench.js';

const here = dirname(import.meta.filename);
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const reps = Number(opt('--reps', '5'));
const rounds = Number(opt('--rounds', '2'));
const dir = opt('--images', join(here, '..', '..', 'shared', 'data', 'images'));
const SIZE = 224;
const CROP_PCT = 0.875;

const images = readdirSync(dir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => join(dir, f));
// A 4,000×3,000 photo: the first image upscaled (PIL-free, sharp's resize; only its size matters here).
const big = '/tmp/tsimm-bench-4000x3000.jpg';
if (!existsSync(big)) await sharp(images[0]!).resize(4000, 3000, { fit: 'fill' }).jpeg({ quality: 90 }).toFile(big);
images.push(big);

const py = spawn('/usr/bin/python3', [join(here, 'tools', 'pil_preprocess.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = createInterface({ input: py.stdout });
const queue: ((l: string) => void)[] = [];
lines.on('line', (l) => queue.shift()?.(l));
const next = () => new Promise<string>((r) => queue.push(r));
const ready = JSON.parse(await next()) as { pil: string };

const target = (w: number, h: number): [number, number] => {
  const s = Math.floor(SIZE / CROP_PCT);
  return w <= h ? [s, Math.trunc((s * h) / w)] : [Math.trunc((s * w) / h), s];
};
const ms = (t0: number) => performance.now() - t0;

async function tsimm(path: string) {
  const decode: number[] = [];
  const resize: number[] = [];
  const total: number[] = [];
  let img = await decodeImage(path, { exifRotate: false, maxPixels: 2e8 });
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    img = await decodeImage(path, { exifRotate: false, maxPixels: 2e8 });
    decode.push(ms(t0));
  }
  const [nw, nh] = target(img.width, img.height);
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    resizePil(img, nw, nh, 'bicubic');
    resize.push(ms(t0));
  }
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const d = await decodeImage(path, { exifRotate: false, maxPixels: 2e8 });
    const r = resizePil(d, nw, nh, 'bicubic');
    crop(r, Math.round((nw - SIZE) / 2), Math.round((nh - SIZE) / 2), SIZE, SIZE);
    total.push(ms(t0));
  }
  return { decode, resize, total, size: [img.width, img.height] };
}

// Warm the JIT on the kernels before timing anything.
{
  const w = await decodeImage(images[0]!, { exifRotate: false, maxPixels: 2e8 });
  for (let i = 0; i < 5; i++) crop(resizePil(w, ...target(w.width, w.height), 'bicubic'), 0, 0, SIZE, SIZE);
}

type Times = { decode: number[]; resize: number[]; total: number[]; size: number[] };
const acc = new Map<string, { ts: Times[]; pil: Times[] }>();
for (let r = 0; r < rounds; r++) {
  for (const path of images) {
    const e = acc.get(path) ?? { ts: [], pil: [] };
    acc.set(path, e);
    // Alternate which side goes first.
    const runPil = async () => {
      py.stdin.write(`${path} ${SIZE} ${CROP_PCT} ${reps}\n`);
      e.pil.push(JSON.parse(await next()) as Times);
    };
    if (r % 2 === 0) { e.ts.push(await tsimm(path)); await runPil(); } else { await runPil(); e.ts.push(await tsimm(path)); }
  }
}
py.stdin.end();

const min = (xs: number[]) => Math.min(...xs);
const rows = [...acc].map(([path, e]) => {
  const m = (ts: Times[], k: 'decode' | 'resize' | 'total') => min(ts.flatMap((t) => t[k]));
  const row = {
    image: path.split('/').pop()!,
    size: e.ts[0]!.size,
    tsimm: { decode: m(e.ts, 'decode'), resize: m(e.ts, 'resize'), total: m(e.ts, 'total') },
    pil: { decode: m(e.pil, 'decode'), resize: m(e.pil, 'resize'), total: m(e.pil, 'total') },
  };
  return { ...row, ratio: { resize: row.tsimm.resize / row.pil.resize, decode: row.tsimm.decode / row.pil.decode, total: row.tsimm.total / row.pil.total } };
});
const geo = (xs: number[]) => Math.exp(xs.reduce((a, b) => a + Math.log(b), 0) / xs.length);
const f = (v: number, d = 1) => v.toFixed(d);
const table = [
  '| image | size | resize ms tsimm / PIL | ratio | decode ms tsimm / PIL | ratio | decode+resize+crop ms tsimm / PIL | ratio |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.image} | ${r.size.join('×')} | ${f(r.tsimm.resize)} / ${f(r.pil.resize)} | ${f(r.ratio.resize, 2)} | ${f(r.tsimm.decode)} / ${f(r.pil.decode)} | ${f(r.ratio.decode, 2)} | ${f(r.tsimm.total)} / ${f(r.pil.total)} | ${f(r.ratio.total, 2)} |`),
  `| geometric mean | | | ${f(geo(rows.map((r) => r.ratio.resize)), 2)} | | ${f(geo(rows.map((r) => r.ratio.decode)), 2)} | | ${f(geo(rows.map((r) => r.ratio.total)), 2)} |`,
].join('\n');
console.log(table);
const result = {
  kind: 'preprocess',
  date: new Date().toISOString(),
  machine: { ...machineInfo(1), loadavgAtEnd: loadavg(), note: 'a shared 2-core VM; both sides single-threaded, taking turns image by image; minimum over reps × rounds' },
  pil: ready.pil,
  sharp: sharp.versions,
  config: { size: SIZE, cropPct: CROP_PCT, interpolation: 'bicubic', reps, rounds },
  rows,
  geomean: { resize: geo(rows.map((r) => r.ratio.resize)), decode: geo(rows.map((r) => r.ratio.decode)), total: geo(rows.map((r) => r.ratio.total)) },
  table,
};
if (!args.includes('--no-save')) {
  const out = join(here, 'results', 'vm');
  mkdirSync(out, { recursive: true });
  const tag = opt('--tag', '');
  const file = join(out, `${new Date().toISOString().slice(0, 10)}-preprocess${tag ? `-${tag}` : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 1)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

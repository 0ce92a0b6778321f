/**
 * The data side of `tsimm train` on small PNGs (benchmark, not a test): seconds per epoch of the DataLoader alone
 * (decode + train transform + batching, no model) on the Fashion-MNIST ImageFolder slice of bench/small-images.ts,
 * with the decoded-image cache off and on, and the per-image decode of a 28×28 PNG by sharp (`decodeImage`) and by
 * the PNG fast path (`src/node/png.ts`), taking turns in one run.
 *
 *   npx tsx bench/data-loader.ts [--slice /tmp/fmnist-slice] [--epochs 3] [--workers 1] [--no-save]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { imageFolder } from '../src/data/datasets.js';
import { DataLoader, siblingModule } from '../src/data/loader.js';
import { decodeSimplePng } from '../src/node/png.js';
import { decodeImage } from '../src/data/preprocess.js';
import { machineInfo } from '../src/tasks/bench.js';

const here = dirname(import.meta.filename);
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const slice = opt('--slice', '/tmp/fmnist-slice');
const epochs = Number(opt('--epochs', '3'));
const workers = Number(opt('--workers', '1'));
const ds = imageFolder(join(slice, 'train'));
const transform = { module: siblingModule(new URL('../src/data/x.ts', import.meta.url).href, './train-transform'), config: { seed: 1, channels: 3, size: [32, 32], interpolation: 'bicubic', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], crop: 'pad', padding: 0, hflip: 0.5, colorJitter: 0 } };

const result: Record<string, number[]> = { off: [], on: [] };
for (const cache of ['off', 'on'] as const) {
  const l = new DataLoader(ds, { batchSize: 64, shape: [3, 32, 32], transform, seed: 1, dropLast: true, workers, cache });
  for (let e = 0; e < epochs; e++) {
    const t0 = performance.now();
    for await (const b of l.epoch(e)) void b;
    result[cache]!.push((performance.now() - t0) / 1000);
  }
  await l.close();
  process.stderr.write(`cache ${cache}: ${result[cache]!.map((s) => s.toFixed(2)).join(', ')} s/epoch\n`);
}

// Per-image decode of the slice's PNGs: sharp against the fast path, alternating per file.
const files = readdirSync(join(slice, 'train', 'Trouser')).slice(0, 200).map((f) => join(slice, 'train', 'Trouser', f));
const dec = { sharp: [] as number[], png: [] as number[] };
for (const f of files) {
  let t0 = performance.now();
  await decodeImage(f, { exifRotate: false, maxPixels: 1e9 });
  dec.sharp.push(performance.now() - t0);
  t0 = performance.now();
  decodeSimplePng(readFileSync(f));
  dec.png.push(performance.now() - t0);
}
const med = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1]!;
const row = {
  epochSecondsCacheOff: result['off'], epochSecondsCacheOn: result['on'],
  decodeMsMedian: { sharp: med(dec.sharp), pngFastPath: med(dec.png) },
};
console.log(JSON.stringify(row));
if (!args.includes('--no-save')) {
  const dir = join(here, 'results', 'vm');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}-data-loader.json`);
  writeFileSync(file, `${JSON.stringify({ kind: 'data-loader', date: new Date().toISOString(), machine: { ...machineInfo(workers), loadavgAtEnd: loadavg() }, slice, workers, epochs, ...row }, null, 1)}\n`);
  process.stderr.write(`wrote ${file}\n`);
}

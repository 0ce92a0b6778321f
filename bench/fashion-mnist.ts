/**
 * Fashion-MNIST end to end (benchmark, not a test): timm's resnet18 trained from timm's initialisation on the
 * 60,000 training images and evaluated on the 10,000 test images of Debian's dataset-fashion-mnist, by tsimm
 * (the library's `fit`, with the data pipeline `tsimm train` builds) and by PyTorch
 * (`bench/tools/torch_fashion_mnist.py`: the same timm architecture in plain torch, Debian's /usr/bin/python3 and
 * python3-torch), on the same machine in the same run, one after the other.
 *
 *   npx tsx bench/fashion-mnist.ts [--epochs 2] [--batch 128] [--size 28] [--lr 0.1] [--weight-decay 1e-4]
 *        [--warmup-epochs 0.25] [--threads 2] [--workers 1] [--limit N] [--train-limit N] [--no-torch] [--no-tsimm] [--no-save] [--tag NAME]
 *        [--data /usr/share/datasets/fashion-mnist] [--recipe small|rrc] [--padding N]
 *
 * Default recipe (`--recipe small`): `tsimm train`'s small-image defaults on both sides (resize to --size + flip,
 * pad + random crop by size/8 from 10 epochs on, Nesterov, whole-image evaluation). `--recipe rrc`, the earlier one:
 * SGD momentum 0.9 (weight decay on rank >= 2 tensors only), label smoothing 0.1, cosine LR
 * per update with a linear warmup from 1e-5, BatchNorm in train mode, last partial batch dropped; augmentation
 * RandomResizedCrop (scale 0.35–1, ratio 3/4–4/3, the model's interpolation) + horizontal flip 0.5, no colour
 * jitter, gray replicated to 3 channels, ImageNet mean/std; evaluation with resnet18's own preprocessing at
 * `--size` (resize to size / crop_pct, centre crop). Both sides: `--threads` compute threads and `--workers` data
 * worker threads/processes. Seconds per epoch are the training loop (data + steps, evaluation excluded), as
 * `tsimm train`'s log.jsonl records them (with `--train-limit N`, only the first N training images train: the
 * table also gives the time a full 60,000-image epoch would take at the measured rate); CPU seconds are the process's own (user + system, data workers included),
 * which says more than wall time on a shared machine. Writes bench/results/vm/<date>-fashion-mnist[-TAG].json and
 * prints a Markdown table.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { idxDataset } from '../src/data/datasets.js';
import { FASHION_MNIST_DIR } from '../src/data/idx.js';
import { DataLoader, evalTransform } from '../src/data/loader.js';
import { resolvePreprocess } from '../src/data/preprocess.js';
import { createModel } from '../src/model.js';
import { machineInfo } from '../src/tasks/bench.js';
import { fit, type BatchSource } from '../src/train/fit.js';
import { timmInit } from '../src/train/init.js';
import { resolveModel } from '../src/models/index.js';
import { trainRecipeDefaults } from '../src/data/small-image.js';

const here = dirname(import.meta.filename);
const PYTHON = '/usr/bin/python3';
const TORCH_SCRIPT = join(here, 'tools', 'torch_fashion_mnist.py');
const MODEL = 'resnet18';

interface Config {
  data: string;
  model: string;
  size: number;
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  weight_decay: number;
  label_smoothing: number;
  warmup_epochs: number;
  warmup_lr: number;
  min_lr: number;
  scale: [number, number];
  ratio: [number, number];
  hflip: number;
  interpolation: string;
  crop_pct: number;
  mean: number[];
  std: number[];
  seed: number;
  /** 'pad': `tsimm train`'s small-image defaults (resize + flip, pad + random crop from 10 epochs); 'rrc': RandomResizedCrop. */
  crop: 'pad' | 'rrc';
  padding: number;
  nesterov: boolean;
  threads: number;
  workers: number;
  limit: number | null;
  train_limit: number | null;
}

interface EpochRow {
  epoch: number;
  train_loss: number;
  lr: number;
  seconds: number;
  cpu_seconds?: number;
  images_per_second: number;
  eval_top1: number;
  eval_top5: number;
  eval_loss: number;
  eval_seconds?: number;
  loadavg?: number[];
}

const cpuNow = () => {
  const u = process.resourceUsage();
  return (u.userCPUTime + u.systemCPUTime) / 1e6;
};

if (process.argv[2] === '--child') {
  // tsimm's side: the pipeline of src/cli/train.ts (IDX data, timm init, train-transform workers, eval transform), run by fit().
  const c = JSON.parse(process.argv[3]!) as Config;
  const lim = c.limit ?? undefined;
  const trainLim = c.train_limit ?? lim;
  const train = await idxDataset(c.data, { split: 'train', ...(trainLim ? { limit: trainLim } : {}) });
  const test = await idxDataset(c.data, { split: 'test', ...(lim ? { limit: lim } : {}) });
  const model = createModel(c.model, { numClasses: train.numClasses, inChans: 3, inputSize: c.size });
  model.weights = timmInit(model.fullGraph, resolveModel(c.model).entry.family, c.seed);
  const pre = resolvePreprocess(model.cfg, { size: c.size, cropPct: c.crop_pct });
  const shape: [number, number, number] = [3, c.size, c.size];
  const trainLoader = new DataLoader(train, {
    batchSize: c.batch, shape, seed: c.seed, dropLast: true, workers: c.workers,
    transform: { module: new URL('../src/data/train-transform.ts', import.meta.url).href, config: { seed: c.seed, channels: 3, size: [c.size, c.size], interpolation: pre.interpolation, mean: pre.mean, std: pre.std, scale: c.scale, ratio: c.ratio, hflip: c.hflip, colorJitter: 0, reprob: 0, ...(c.crop === 'pad' ? { crop: 'pad', padding: c.padding } : {}) } },
  });
  const testLoader = new DataLoader(test, { batchSize: c.batch, shape, shuffle: false, workers: c.workers, transform: evalTransform(pre) });
  // CPU time of the training loop alone: from the first batch asked for to the end of the epoch's batches.
  const cpu: number[] = [];
  let evalStart = 0;
  const evalSeconds: number[] = [];
  const trainSource: BatchSource = {
    batchesPerEpoch: trainLoader.batchesPerEpoch,
    async *batches(epoch, skip = 0) {
      const c0 = cpuNow();
      for await (const b of trainLoader.epoch(epoch, { start: skip * c.batch })) yield { x: { shape: b.shape, data: b.data }, targets: b.targets };
      cpu.push(cpuNow() - c0);
      evalStart = performance.now();
    },
  };
  const testSource: BatchSource = {
    batchesPerEpoch: testLoader.batchesPerEpoch,
    async *batches(epoch) {
      for await (const b of testLoader.epoch(epoch)) yield { x: { shape: b.shape, data: b.data }, targets: b.targets };
      evalSeconds.push((performance.now() - evalStart) / 1000);
    },
  };
  const r = await fit({
    model, train: trainSource, val: testSource, epochs: c.epochs, seed: c.seed,
    trainer: { optimizer: 'sgd', lr: c.lr, momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weight_decay, labelSmoothing: c.label_smoothing, batchNorm: 'train', threads: c.threads },
    schedule: { kind: 'cosine', warmupEpochs: c.warmup_epochs, warmupLr: c.warmup_lr, minLr: c.min_lr },
    onEpoch: (e) => console.log(JSON.stringify({ ...e, cpu_seconds: cpu[e.epoch], eval_seconds: evalSeconds[e.epoch], loadavg: loadavg() })),
  });
  await trainLoader.close();
  await testLoader.close();
  console.log(JSON.stringify({ summary: { steps: r.steps, params: model.parameters().reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0) } }));
  process.exit(0);
}

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : dflt;
};
const size = Number(opt('--size', '28'));
const recipe = opt('--recipe', 'small') === 'rrc' ? 'rrc' : 'pad';
const small = trainRecipeDefaults(size, {}, Number(opt('--epochs', '2')));
const pre = resolvePreprocess(createModel(MODEL, { numClasses: 10, inputSize: size }).cfg, { size, ...(recipe === 'pad' ? { cropPct: 1 } : {}) });
const config: Config = {
  data: opt('--data', FASHION_MNIST_DIR),
  model: MODEL,
  size,
  epochs: Number(opt('--epochs', '2')),
  batch: Number(opt('--batch', '128')),
  lr: Number(opt('--lr', '0.1')),
  momentum: 0.9,
  weight_decay: Number(opt('--weight-decay', '1e-4')),
  label_smoothing: 0.1,
  warmup_epochs: Number(opt('--warmup-epochs', '0.25')),
  warmup_lr: 1e-5,
  min_lr: 0,
  scale: [0.35, 1],
  ratio: [3 / 4, 4 / 3],
  hflip: 0.5,
  interpolation: pre.interpolation,
  crop_pct: pre.cropPct,
  mean: pre.mean,
  std: pre.std,
  seed: 42,
  crop: recipe,
  padding: Number(opt('--padding', String(small.padding ?? 0))),
  nesterov: recipe === 'pad',
  threads: Number(opt('--threads', '2')),
  workers: Number(opt('--workers', '1')),
  limit: args.includes('--limit') ? Number(opt('--limit', '0')) : null,
  train_limit: args.includes('--train-limit') ? Number(opt('--train-limit', '0')) : null,
};
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Run a child to the end, echoing its epoch lines; its JSON lines back. */
function runChild(label: string, cmd: string, argv: string[]): Promise<{ epochs: EpochRow[]; summary: Record<string, unknown>; wallSeconds: number; loadBefore: number[]; loadAfter: number[] }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const loadBefore = loadavg();
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const epochs: EpochRow[] = [];
    let summary: Record<string, unknown> = {};
    let stderr = '';
    createInterface({ input: p.stdout }).on('line', (l) => {
      if (!l.startsWith('{')) return;
      const j = JSON.parse(l) as EpochRow & { summary?: Record<string, unknown> };
      if (j.summary) summary = j.summary;
      else {
        epochs.push(j);
        log(`${label} epoch ${j.epoch}: loss ${j.train_loss.toFixed(4)} top-1 ${j.eval_top1.toFixed(2)} % ${j.seconds.toFixed(0)} s (${j.images_per_second.toFixed(1)} img/s)`);
      }
    });
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${label} failed (exit ${code}):\n${stderr.slice(-4000)}`));
      else resolve({ epochs, summary, wallSeconds: (performance.now() - t0) / 1000, loadBefore, loadAfter: loadavg() });
    });
  });
}

const t0 = performance.now();
const sides: Record<string, Awaited<ReturnType<typeof runChild>>> = {};
if (!args.includes('--no-tsimm')) sides['tsimm'] = await runChild('tsimm', process.execPath, ['--import', 'tsx', import.meta.filename, '--child', JSON.stringify(config)]);
if (!args.includes('--no-torch')) sides['pytorch'] = await runChild('pytorch', PYTHON, [TORCH_SCRIPT, JSON.stringify(config)]);

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const trainImages = Math.floor(Math.min(config.train_limit ?? config.limit ?? 60000, 60000) / config.batch) * config.batch;
const rows = Object.entries(sides).map(([side, s]) => {
  const last = s.epochs[s.epochs.length - 1]!;
  return {
    side,
    epochs: s.epochs.length,
    top1: last.eval_top1,
    top5: last.eval_top5,
    secondsPerEpoch: mean(s.epochs.map((e) => e.seconds)),
    cpuSecondsPerEpoch: mean(s.epochs.map((e) => e.cpu_seconds ?? NaN)),
    imagesPerSecond: mean(s.epochs.map((e) => e.images_per_second)),
    secondsPer60kEpoch: 60000 / mean(s.epochs.map((e) => e.images_per_second)),
    cpuSecondsPer60kEpoch: (mean(s.epochs.map((e) => e.cpu_seconds ?? NaN)) * 60000) / trainImages,
    evalSeconds: mean(s.epochs.map((e) => e.eval_seconds ?? NaN)),
    loadBefore: s.loadBefore,
    loadAfter: s.loadAfter,
  };
});
const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const table = [
  `| ${MODEL} ${size}×${size}, batch ${config.batch} | epochs × training images | test top-1 % (${config.limit ?? 10000} images) | top-5 % | s/epoch (train loop) | CPU s/epoch | img/s | s per 60k-image epoch at that rate | CPU s per 60k epoch | eval s | load avg before → after |`,
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.side} | ${r.epochs} × ${trainImages} | ${f(r.top1, 2)} | ${f(r.top5, 2)} | ${f(r.secondsPerEpoch, 0)} | ${f(r.cpuSecondsPerEpoch, 0)} | ${f(r.imagesPerSecond)} | ${f(r.secondsPer60kEpoch, 0)} | ${f(r.cpuSecondsPer60kEpoch, 0)} | ${f(r.evalSeconds)} | ${r.loadBefore.map((x) => x.toFixed(1)).join('/')} → ${r.loadAfter.map((x) => x.toFixed(1)).join('/')} |`),
].join('\n');
console.log(table);

const result = {
  kind: 'fashion-mnist',
  date: new Date().toISOString(),
  machine: { ...machineInfo(config.threads), loadavgAtEnd: loadavg(), note: 'a shared 2-core VM: other jobs ran during the measurement (load averages per side below); CPU seconds are the steadier figure' },
  torch: { python: PYTHON, script: 'bench/tools/torch_fashion_mnist.py', version: sides['pytorch']?.summary['torch'] },
  config,
  protocol: 'resnet18 from timm init, trained on the training split (' + (config.train_limit ?? config.limit ?? 60000) + ' images) and evaluated on the test split after each epoch; tsimm first, then PyTorch, one child process each; seconds = training loop per epoch (data + steps), evaluation excluded',
  wallSeconds: Math.round((performance.now() - t0) / 1000),
  rows,
  epochs: Object.fromEntries(Object.entries(sides).map(([k, s]) => [k, s.epochs])),
  table,
};
if (!args.includes('--no-save')) {
  const dir = join(here, 'results', 'vm');
  mkdirSync(dir, { recursive: true });
  const tag = opt('--tag', '');
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}-fashion-mnist${tag ? `-${tag}` : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 1)}\n`);
  log(`wrote ${file} (${result.wallSeconds} s)`);
}

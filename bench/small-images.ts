/**
 * The whole `tsimm train` command against a plain PyTorch script on small images (benchmark, not a test), issue
 * 21's setting: a 3,000/1,000-image Fashion-MNIST ImageFolder of PNGs (made by bench/tools/fashion_imagefolder.py
 * from Debian's dataset-fashion-mnist), resnet18 from scratch at 32 px, 5 epochs, batch 64, lr 0.05.
 *
 *   tsimm:   `tsimm train resnet18 --data S/train --val S/val --size 32 --epochs 5 -b 64 --lr 0.05` with its
 *            defaults otherwise (plus --tsimm-args "...")
 *   PyTorch: bench/tools/torch_imagefolder.py, the plain recipe a user writes (SGD Nesterov, weight decay 2e-5,
 *            label smoothing 0.1, cosine; resize + flip, or --torch-aug pad; timm's eval crop_pct 0.95)
 *
 * Both run as one process each, timed from spawn to exit (load + train + eval), taking turns (--repeat N pairs,
 * the order alternating). Reports wall seconds, the ratio tsimm ÷ PyTorch, and top-1 per epoch.
 *
 *   npx tsx bench/small-images.ts [--slice /tmp/fmnist-slice] [--epochs 5] [--repeat 1] [--tsimm-args "..."]
 *        [--torch-aug flip|pad] [--no-torch] [--no-tsimm] [--no-save] [--tag NAME]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { machineInfo } from '../src/tasks/bench.js';

const here = dirname(import.meta.filename);
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const slice = opt('--slice', '/tmp/fmnist-slice');
const epochs = Number(opt('--epochs', '5'));
const repeat = Number(opt('--repeat', '1'));
const extra = opt('--tsimm-args', '').split(' ').filter(Boolean);
const log = (s: string) => process.stderr.write(`${s}\n`);

if (!existsSync(join(slice, 'DONE'))) {
  log(`making the slice in ${slice}`);
  await run('/usr/bin/python3', [join(here, 'tools', 'fashion_imagefolder.py'), slice, '3000', '1000']);
}

function run(cmd: string, argv: string[]): Promise<{ stdout: string; stderr: string; wall: number; cpu?: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn('/usr/bin/time', ['-f', 'TIME %U %S %M', cmd, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => {
      const wall = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`${cmd} failed (${code}): ${stderr.slice(-3000)}`));
      const m = /TIME ([\d.]+) ([\d.]+) (\d+)/.exec(stderr);
      resolve({ stdout, stderr, wall, ...(m ? { cpu: Number(m[1]) + Number(m[2]), rssMb: Number(m[3]) / 1024 } : {}) });
    });
  });
}

const torchConfig = {
  train: join(slice, 'train'), val: join(slice, 'val'), model: 'resnet18', size: 32, epochs, batch: 64, lr: 0.05, momentum: 0.9, nesterov: true,
  weight_decay: 2e-5, label_smoothing: 0.1, interpolation: 'bicubic', crop_pct: 0.95, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
  aug: opt('--torch-aug', 'flip'), pad: 4, hflip: 0.5, seed: 42, threads: 2, workers: 1,
};

async function tsimm() {
  const out = mkdtempSync(join(tmpdir(), 'tsimm-small-'));
  try {
    const r = await run(process.execPath, ['--import', 'tsx', join(here, '..', 'src', 'cli', 'main.ts'), 'train', 'resnet18', '--data', join(slice, 'train'), '--val', join(slice, 'val'), '--size', '32', '--epochs', String(epochs), '-b', '64', '--lr', '0.05', '-o', out, '--json', ...extra]);
    const recs = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; eval_top1: number; seconds: number });
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    return { wall: r.wall, cpu: r.cpu, top1: recs.map((x) => x.eval_top1), trainSeconds: recs.map((x) => x.seconds), defaults: r.stderr.split('\n').filter((l) => /^(small images|train transform|recipe)/.test(l)), trainTransform: config['train_transform'] };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function torch() {
  const r = await run('/usr/bin/python3', [join(here, 'tools', 'torch_imagefolder.py'), JSON.stringify(torchConfig)]);
  const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { epoch?: number; eval_top1: number; seconds: number; summary?: { torch: string } });
  const eps = recs.filter((x) => x.epoch !== undefined);
  return { wall: r.wall, cpu: r.cpu, top1: eps.map((x) => x.eval_top1), trainSeconds: eps.map((x) => x.seconds), torch: recs.find((x) => x.summary)?.summary?.torch };
}

type Side = Awaited<ReturnType<typeof tsimm>> | Awaited<ReturnType<typeof torch>>;
const pairs: { tsimm?: Side; pytorch?: Side; load: number[] }[] = [];
for (let i = 0; i < repeat; i++) {
  const p: (typeof pairs)[number] = { load: loadavg() };
  const order = i % 2 === 0 ? ['tsimm', 'pytorch'] : ['pytorch', 'tsimm'];
  for (const side of order) {
    if (side === 'tsimm' && !args.includes('--no-tsimm')) p.tsimm = await tsimm();
    if (side === 'pytorch' && !args.includes('--no-torch')) p.pytorch = await torch();
    const s = p[side as 'tsimm' | 'pytorch'];
    if (s) log(`${side}: ${s.wall.toFixed(1)} s wall, top-1 ${s.top1.map((x) => x.toFixed(1)).join(' ')}`);
  }
  pairs.push(p);
}
const f = (v: number | undefined, d = 1) => (v === undefined ? '–' : v.toFixed(d));
const table = [
  '| pair | tsimm s (load+train+eval) | PyTorch s | ratio | tsimm top-1 % per epoch | PyTorch top-1 % per epoch |',
  '| --- | --- | --- | --- | --- | --- |',
  ...pairs.map((p, i) => `| ${i + 1} | ${f(p.tsimm?.wall)} | ${f(p.pytorch?.wall)} | ${p.tsimm && p.pytorch ? f(p.tsimm.wall / p.pytorch.wall, 2) : '–'} | ${p.tsimm?.top1.map((x) => x.toFixed(1)).join(', ') ?? '–'} | ${p.pytorch?.top1.map((x) => x.toFixed(1)).join(', ') ?? '–'} |`),
].join('\n');
console.log(table);
const result = {
  kind: 'small-images',
  date: new Date().toISOString(),
  machine: { ...machineInfo(2), loadavgAtEnd: loadavg(), note: 'a shared 2-core VM; the sides take turns, one process each' },
  slice, epochs, tsimmArgs: extra, torchConfig, pairs, table,
};
if (!args.includes('--no-save')) {
  const dir = join(here, 'results', 'vm');
  mkdirSync(dir, { recursive: true });
  const tag = opt('--tag', '');
  const file = join(dir, `${new Date().toISOString().slice(0, 10)}-small-images${tag ? `-${tag}` : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 1)}\n`);
  log(`wrote ${file}`);
}

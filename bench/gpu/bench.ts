/**
 * The GPU benchmark's driver: prepare.sh bundles it into dist/app/bin/gpu-bench.mjs, run.sh runs it on a machine
 * with a GPU and no Node (README.md beside this file).
 *
 *   bench  --device webgpu --precision fp32,fp16 --batch 1,4,8 [--models A,B] [--deadline S] --out DIR
 *          the seed pages' models at their crop sizes, one per architecture and crop, cheapest first, through
 *          `tsimm bench`'s own loop (src/tasks/bench.ts) on the device; stops starting models at the deadline.
 *          Writes DIR/tsimm.json (rows, errors, skipped, numerics) and DIR/manifest.json (for torch_peer.py).
 *   report DIR  DIR/tsimm.json + DIR/torch.json + the seed table's T4 rows → Markdown on stdout.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createModel, type Model } from '../../src/model.js';
import { resolveModel } from '../../src/models/index.js';
import { compareLogits, uniformInput } from '../../src/math.js';
import { DEVICES, type Device } from '../../src/runtime/device.js';
import { createSession, runSession } from '../../src/runtime/session.js';
import { benchModel, machineInfo, PROTOCOL, type BenchRow, type Precision } from '../../src/tasks/bench.js';
import { DEFAULT_SEEDS, loadSeeds } from '../../src/tasks/verify.js';
import type { WeightMap } from '../../src/onnx/export.js';

interface SeedEntry {
  crop?: number;
  gflops?: number;
  mparams?: number;
  latency_ms?: Record<string, number>;
}

/** A benchmarked model: the seed names that share its architecture and crop (their T4 rows are one). */
interface Planned {
  name: string;
  names: string[];
  crop: number;
  gflops: number;
  /** A timm architecture of the same structure, for torch_peer.py (null: timm has none). */
  peer: string | null;
  params?: number;
}

/**
 * Seed models with the same structure in timm that the registry does not alias (an alias also means the same
 * weight layout, which a PyTorch peer with random weights does not need).
 */
const PEERS: Record<string, string> = {
  ResNet18: 'resnet18',
  ResNet34: 'resnet34',
  ResNet18_vd: 'resnet18d',
  ResNet34_vd: 'resnet34d',
  ResNet200_vd: 'resnet200d',
  Res2Net50_26w_4s: 'res2net50_26w_4s',
  Res2Net50_14w_8s: 'res2net50_14w_8s',
  Res2Net50_vd_26w_4s: 'res2net50d',
  Res2Net101_vd_26w_4s: 'res2net101d',
};

/** Models whose fp16 numerics are checked on the device (calibrated BatchNorm, batch 8): one per family. */
const CHECKS = ['ResNet50_vd', 'ResNeXt50_32x4d', 'SE_ResNeXt50_32x4d', 'Res2Net50_26w_4s', 'ResNeSt50', 'RegNetX_4GF', 'EfficientNetB0'];

const log = (t0: number, s: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}\n`);

function peerOf(name: string): string | null {
  const { entry } = resolveModel(name);
  if (entry.source === 'timm') return entry.name;
  for (const a of entry.aliases) if (resolveModel(a).entry.source === 'timm') return a;
  return PEERS[name] ?? null;
}

export function plan(seeds: Record<string, SeedEntry>, only?: string[]): Planned[] {
  const groups = new Map<string, Planned>();
  for (const [name, s] of Object.entries(seeds)) {
    if (only ? !only.includes(name) : !s.latency_ms || !s.crop) continue;
    const { entry } = resolveModel(name);
    const crop = s.crop ?? entry.cfgs[0]!.inputSize[1];
    const key = `${entry.arch}@${crop}`;
    const g = groups.get(key);
    if (g) g.names.push(name);
    else groups.set(key, { name, names: [name], crop, gflops: s.gflops ?? 0, peer: peerOf(name) });
  }
  for (const n of only ?? []) if (!seeds[n] && ![...groups.values()].some((g) => g.names.includes(n))) {
    const { entry } = resolveModel(n);
    groups.set(n, { name: n, names: [n], crop: entry.cfgs[0]!.inputSize[1], gflops: 0, peer: peerOf(n) });
  }
  return [...groups.values()].sort((a, b) => a.gflops - b.gflops);
}


/**
 * BatchNorm statistics from one training-mode forward over random inputs (the fixtures' calibration): He-init
 * weights with identity statistics grow activations layer by layer until fp16 overflows, which trained nets don't.
 */
async function calibrate(model: Model, threads?: number): Promise<void> {
  const [h, w] = model.inputSize;
  const trainer = model.trainer({ bnMomentum: 1, threads });
  try {
    const fb = await trainer.forwardBackward(uniformInput([8, model.inChans, h, w], 1000), new Array(8).fill(0));
    trainer.engine.updateRunningStats(fb, 8);
  } finally {
    await trainer.release();
  }
}

interface Agreement {
  rel: number;
  top1: number;
}

function agreement(ref: Float32Array, y: Float32Array, batch: number): Agreement {
  const c = compareLogits(ref, y, batch);
  return { rel: c.maxAbs / Math.max(c.maxRef, 1e-30), top1: c.top1Agree / batch };
}

/**
 * fp32 and fp16 on the device against the CPU EP. fp16 vs fp16-on-CPU isolates the device's half-precision
 * arithmetic (the CPU EP computes fp16 nodes in fp32), fp16-on-CPU vs fp32 the weights' rounding.
 */
async function numerics(name: string, crop: number, device: Device, threads?: number) {
  const model = createModel(name, { inputSize: crop }).initWeights();
  await calibrate(model, threads);
  const x = uniformInput([8, model.inChans, crop, crop], 5);
  const logits = async (half: boolean, d: Device) => {
    const s = await createSession(model.toOnnx({ outputs: ['logits'], float16: half }), { device: d, threads });
    try {
      return (await runSession(s, x, ['logits']))['logits']!.data;
    } finally {
      await s.release();
    }
  };
  const cpu32 = await logits(false, 'cpu');
  const cpu16 = await logits(true, 'cpu');
  const out: Record<string, Agreement | string | number> = { model: name, crop, maxLogit: cpu32.reduce((a, v) => Math.max(a, Math.abs(v)), 0) };
  out['cpuFp16VsFp32'] = agreement(cpu32, cpu16, 8);
  try {
    out['deviceFp32VsCpu'] = agreement(cpu32, await logits(false, device), 8);
  } catch (e) {
    out['deviceFp32VsCpu'] = (e as Error).message;
  }
  try {
    const dev16 = await logits(true, device);
    out['deviceFp16VsFp32'] = agreement(cpu32, dev16, 8);
    out['deviceFp16VsCpuFp16'] = agreement(cpu16, dev16, 8);
  } catch (e) {
    out['deviceFp16VsFp32'] = (e as Error).message;
  }
  return out;
}

async function bench(v: Record<string, string | boolean | undefined>): Promise<number> {
  const t0 = performance.now();
  const device = (v['device'] as Device | undefined) ?? 'webgpu';
  if (!DEVICES.includes(device)) throw new Error(`--device takes ${DEVICES.join(', ')}`);
  // benchModel's sessions take no device option: the process default (src/runtime/device.ts) carries it.
  process.env['TSIMM_DEVICE'] = device;
  const outDir = String(v['out'] ?? 'bench/gpu/out');
  mkdirSync(outDir, { recursive: true });
  const seeds = loadSeeds(String(v['seeds'] ?? DEFAULT_SEEDS)) as unknown as Record<string, SeedEntry>;
  const only = typeof v['models'] === 'string' ? v['models'].split(',') : undefined;
  const models = plan(seeds, only);
  let precisions = String(v['precision'] ?? 'fp32,fp16').split(',') as Precision[];
  const batches = String(v['batch'] ?? '1,4,8').split(',').map(Number);
  const deadline = t0 + Number(v['deadline'] ?? 330) * 1000;
  const threads = v['threads'] ? Number(v['threads']) : undefined;
  const timing = { warmup: Number(v['warmup'] ?? 5), minRuns: Number(v['min-runs'] ?? 20), minSeconds: Number(v['min-seconds'] ?? 0.3) };
  const size = v['size'] ? Number(v['size']) : undefined;

  const result = {
    machine: { ...machineInfo(threads), executionProvider: device, gpu: process.env['TSIMM_GPU_NAME'] ?? null },
    protocol: `${PROTOCOL}; inputs and outputs on the host (each run uploads the batch and downloads the logits)`,
    config: { device, precisions, batches, ...timing, deadlineSeconds: Number(v['deadline'] ?? 330), size: size ?? null },
    notes: [] as string[],
    rows: [] as BenchRow[],
    groups: Object.fromEntries(models.map((m) => [m.name, m.names])),
    errors: [] as { model: string; precision?: string; error: string }[],
    skipped: [] as string[],
    numerics: [] as Record<string, unknown>[],
    seconds: 0,
  };
  // Both files after every model: a run killed at its time limit still leaves what it measured.
  const save = () => {
    result.seconds = (performance.now() - t0) / 1000;
    writeFileSync(join(outDir, 'tsimm.json'), `${JSON.stringify(result, null, 1)}\n`);
    const done = models.filter((m) => result.rows.some((r) => r.model === m.name));
    const manifest = { batches, precisions, timing, models: done.map((m) => ({ name: m.name, peer: m.peer, crop: size ?? m.crop, params: m.params ?? null })) };
    writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`);
  };

  // One small model first: a device that cannot run at all fails here, in one line, before the long loop.
  for (const p of [...precisions]) {
    try {
      const m = createModel('resnet18', { inputSize: 64 }).initWeights();
      const s = await createSession(m.toOnnx({ float16: p === 'fp16' }), { device, threads });
      await runSession(s, uniformInput([1, 3, 64, 64], 1));
      await s.release();
      log(t0, `probe: ${device} runs ${p}`);
    } catch (e) {
      const msg = (e as Error).message;
      log(t0, `probe: ${device} cannot run ${p}: ${msg}`);
      result.notes.push(`${p} not run: ${msg}`);
      precisions = precisions.filter((x) => x !== p);
    }
  }
  result.config.precisions = precisions;
  if (!precisions.length) {
    save();
    return 1;
  }

  // Seconds per million parameters (export, load, upload, timing) so far: a model that cannot end before the
  // deadline is not started, and the cheap models all run.
  let perMParam = 0.03;
  for (const m of models) {
    const entry = seeds[m.name];
    const mparams = entry?.mparams ?? 25;
    const estimate = (2 + perMParam * mparams) * precisions.length * 1000;
    if (performance.now() + estimate > deadline) {
      result.skipped.push(m.name);
      continue;
    }
    const start = performance.now();
    let weights: WeightMap | undefined;
    const cached = async (model: Model) => {
      if (weights) model.weights = weights;
      else weights = model.initWeights().weights;
    };
    for (const p of precisions) {
      try {
        const rows = await benchModel(m.name, { batches, precisions: [p], threads, size: size ?? m.crop, ...timing, weights: cached });
        result.rows.push(...rows);
        log(t0, `${m.name} ${p}: ${rows.map((r) => `bs${r.batch} ${r.meanMs.toFixed(2)} ms`).join(', ')}`);
      } catch (e) {
        result.errors.push({ model: m.name, precision: p, error: (e as Error).message });
        log(t0, `${m.name} ${p}: ${(e as Error).message}`);
      }
    }
    m.params = createModel(m.name, { inputSize: size ?? m.crop }).counts().params;
    perMParam = Math.max(perMParam, ((performance.now() - start) / 1000 / precisions.length - 2) / mparams);
    save();
  }
  if (result.skipped.length) log(t0, `deadline: not started ${result.skipped.join(', ')}`);

  const checks = typeof v['check'] === 'string' ? v['check'].split(',').filter(Boolean) : CHECKS;
  const checkUntil = t0 + Number(v['check-deadline'] ?? Number(v['deadline'] ?? 330) + 60) * 1000;
  for (const name of checks) {
    if (performance.now() + 15_000 > checkUntil) break;
    try {
      const crop = seeds[name]?.crop ?? resolveModel(name).entry.cfgs[0]!.inputSize[1];
      const r = await numerics(name, size ?? crop, device, threads);
      result.numerics.push(r);
      log(t0, `numerics ${name}: ${JSON.stringify(r)}`);
    } catch (e) {
      result.numerics.push({ model: name, error: (e as Error).message });
    }
    save();
  }

  save();
  log(t0, `wrote ${join(outDir, 'tsimm.json')} (${result.rows.length} rows, ${result.errors.length} errors, ${result.skipped.length} not started)`);
  return 0;
}

interface TorchRow {
  model: string;
  peer: string;
  precision: string;
  batch: number;
  meanMs: number;
  deviceMs: number;
}

const f2 = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2));

function report(dir: string, seedsPath: string): string {
  const ours = JSON.parse(readFileSync(join(dir, 'tsimm.json'), 'utf8')) as {
    machine: { gpu: string | null; executionProvider: string; onnxruntime: string; cpu: string };
    config: { batches: number[]; precisions: string[] };
    rows: BenchRow[];
    groups: Record<string, string[]>;
    errors: { model: string; precision?: string; error: string }[];
    skipped: string[];
    notes: string[];
    numerics: Record<string, unknown>[];
    protocol: string;
  };
  const torchFile = join(dir, 'torch.json');
  const torch = existsSync(torchFile)
    ? (JSON.parse(readFileSync(torchFile, 'utf8')) as { device: string; torch: string; timm: string | null; rows: TorchRow[]; skipped: { model: string; why: string }[]; protocol: string })
    : undefined;
  const seeds = loadSeeds(seedsPath) as unknown as Record<string, SeedEntry>;
  const batches = ours.config.batches;
  const precisions = [...new Set(['fp32', 'fp16', ...ours.config.precisions])];
  const cols = (label: string) => batches.map((b) => `${label} bs${b}`).join(' | ');
  const lines = [
    `# tsimm on ${ours.machine.gpu ?? 'the GPU'} (ONNX Runtime ${ours.machine.onnxruntime} ${ours.machine.executionProvider} EP) beside the seed pages' T4 and PyTorch eager`,
    '',
    `Mean latency per batch in ms. tsimm: ${ours.protocol}. T4: the seed pages' rows (their own runtime and protocol, on an NVIDIA T4).` +
      (torch ? ` PyTorch: ${torch.protocol} (torch ${torch.torch}, timm ${torch.timm ?? 'absent'}, ${torch.device}).` : ' PyTorch: not run.') +
      ' All weights random (speed does not depend on them).',
    '',
    `| Model | Crop | Prec | ${cols('T4')} | ${cols('tsimm')} | ${cols('torch')} |`,
    `|${' --- |'.repeat(3 + 3 * batches.length)}`,
  ];
  for (const [rep, names] of Object.entries(ours.groups)) {
    if (ours.skipped.includes(rep)) continue;
    const seed = seeds[rep];
    for (const p of precisions) {
      const t4 = batches.map((b) => f2(seed?.latency_ms?.[`t4_${p}_bs${b}`]));
      const mine = batches.map((b) => f2(ours.rows.find((r) => r.model === rep && r.precision === p && r.batch === b)?.meanMs));
      const peer = batches.map((b) => f2(torch?.rows.find((r) => r.model === rep && r.precision === p && r.batch === b)?.meanMs));
      const crop = ours.rows.find((r) => r.model === rep)?.cropSize ?? seed?.crop ?? '-';
      const label = names.length > 1 ? `${rep} (= ${names.slice(1).join(', ')})` : rep;
      lines.push(`| ${label} | ${crop} | ${p.toUpperCase()} | ${t4.join(' | ')} | ${mine.join(' | ')} | ${peer.join(' | ')} |`);
    }
  }
  if (ours.numerics.length) {
    lines.push('', '## fp16 numerics (calibrated BatchNorm, random weights, batch 8; rel = max|Δ| / max|reference|, top-1 = agreement)', '');
    lines.push('| Model | max logit | device fp32 vs CPU fp32 | CPU fp16 graph vs fp32 (weight rounding) | device fp16 vs CPU fp16 graph (fp16 arithmetic) | device fp16 vs fp32 |', '| --- | --- | --- | --- | --- | --- |');
    const cell = (x: unknown) => (typeof x === 'object' && x ? `${(x as Agreement).rel.toExponential(1)}, top-1 ${((x as Agreement).top1 * 100).toFixed(0)} %` : String(x ?? '-').slice(0, 80));
    for (const n of ours.numerics) {
      lines.push(`| ${n['model']} | ${typeof n['maxLogit'] === 'number' ? n['maxLogit'].toFixed(2) : '-'} | ${cell(n['deviceFp32VsCpu'] ?? n['error'])} | ${cell(n['cpuFp16VsFp32'])} | ${cell(n['deviceFp16VsCpuFp16'])} | ${cell(n['deviceFp16VsFp32'])} |`);
    }
  }
  const tail = [
    ...ours.notes.map((n) => `- ${n}`),
    ...ours.errors.map((e) => `- tsimm ${e.model} ${e.precision ?? ''}: ${e.error.slice(0, 300)}`),
    ...(ours.skipped.length ? [`- not started before the deadline: ${ours.skipped.join(', ')}`] : []),
    ...(torch?.skipped ?? []).map((s) => `- torch ${s.model}: ${s.why}`),
  ];
  if (tail.length) lines.push('', '## Notes', '', ...tail);
  return `${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: Object.fromEntries(
      ['device', 'precision', 'batch', 'models', 'deadline', 'check', 'check-deadline', 'out', 'seeds', 'threads', 'warmup', 'min-runs', 'min-seconds', 'size'].map((k) => [k, { type: 'string' as const }]),
    ),
  });
  if (cmd === 'bench') return bench(values);
  if (cmd === 'report') {
    process.stdout.write(report(positionals[0] ?? String(values['out'] ?? 'bench/gpu/out'), String(values['seeds'] ?? DEFAULT_SEEDS)));
    return 0;
  }
  process.stderr.write('usage: gpu-bench bench [--device webgpu] [--precision fp32,fp16] [--batch 1,4,8] [--models A,B] [--deadline S] --out DIR | report DIR\n');
  return 2;
}

process.exitCode = await main(process.argv.slice(2));

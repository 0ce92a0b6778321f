/**
 * `tsimm bench`: latency and throughput the way the seed pages report them (per batch size and precision),
 * on this machine, with the protocol printed beside the numbers.
 *
 * Protocol: one random input of the model's size, created outside the timer; `warmup` untimed runs; then
 * timed runs of session.run alone until both `minRuns` and `minSeconds` are reached. `--compare` times an
 * external ONNX model in the same process, alternating run by run with ours, so both see the same machine.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, platform, release } from 'node:os';
import ort from 'onnxruntime-node';
import { resolvePreprocess } from '../data/preprocess.js';
import { uniformInput } from '../math.js';
import { createModel, type Model } from '../model.js';
import { createSession, type Session } from '../runtime/session.js';
import { calibrate, imageBatches, int8Onnx } from './quantize.js';
import { resolveDevice, type Device, type DeviceOptions } from '../runtime/device.js';

export type Precision = 'fp32' | 'fp16' | 'int8';

export interface BenchConfig extends DeviceOptions {
  batches: number[];
  precisions: Precision[];
  threads?: number;
  size?: number;
  warmup: number;
  minRuns: number;
  minSeconds: number;
  /** An external ONNX model (e.g. the same net exported by PyTorch) timed alternately with ours. */
  compare?: string;
  /** Calibration images for int8 (default: random inputs, which time correctly but calibrate poorly). */
  calib?: string[];
  weights?: (m: Model) => Promise<void>;
  log?: (s: string) => void;
}

export interface Timing {
  runs: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
}

export interface BenchRow extends Timing {
  model: string;
  precision: Precision;
  batch: number;
  inputSize: [number, number];
  cropSize: number;
  resizeShort: number;
  imagesPerSecond: number;
  gflopsPerSecond: number;
  compare?: Timing & { file: string; ratio: number };
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  isa: string[];
  os: string;
  node: string;
  onnxruntime: string;
  executionProvider: string;
  threads: number;
}

export const PROTOCOL =
  'random input of the model size created once outside the timer; warm-up runs untimed; then session.run timed until both the minimum run count and the minimum time are reached; preprocessing excluded; FLOP/s from 2 x MACs';

export function machineInfo(threads?: number, device?: Device): MachineInfo {
  let flags: string[] = [];
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    flags = (/^flags\s*:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/);
  } catch {
    /* not Linux */
  }
  const interesting = ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_int8', 'neon', 'asimd'];
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    isa: interesting.filter((f) => flags.includes(f)),
    os: `${platform()} ${release()}`,
    node: process.version,
    onnxruntime: ort.env.versions.node ?? 'unknown',
    executionProvider: resolveDevice(device),
    threads: threads ?? availableParallelism(),
  };
}

function summarize(times: number[]): Timing {
  const s = [...times].sort((a, b) => a - b);
  return {
    runs: s.length,
    meanMs: s.reduce((a, b) => a + b, 0) / s.length,
    p50Ms: s[Math.floor((s.length - 1) / 2)]!,
    p95Ms: s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!,
  };
}

async function precisionSession(model: Model, precision: Precision, c: BenchConfig): Promise<Session> {
  const opts = { threads: c.threads, device: c.device, allowCpuFallback: c.allowCpuFallback };
  if (precision === 'fp32') return model.createSession(opts);
  if (precision === 'fp16') return createSession(model.toOnnx({ float16: true }), opts);
  const batches = c.calib?.length ? imageBatches(model, c.calib) : [uniformInput([8, model.inChans, ...model.inputSize])];
  return createSession(int8Onnx(model, await calibrate(model, batches)), opts);
}

export async function benchModel(name: string, c: BenchConfig): Promise<BenchRow[]> {
  const model = createModel(name, { inputSize: c.size });
  if (c.weights) await c.weights(model);
  if (!model.weights) model.initWeights();
  const counts = model.counts();
  const pre = resolvePreprocess(model.cfg, { size: model.inputSize });
  const cropSize = model.inputSize[0];
  const resizeShort = pre.backend === 'cv2' ? (pre.resizeShort ?? Math.round(cropSize / pre.cropPct)) : Math.floor(cropSize / pre.cropPct);
  const external = c.compare ? await createSession(c.compare, { threads: c.threads }) : undefined;
  const rows: BenchRow[] = [];
  try {
    for (const precision of c.precisions) {
      c.log?.(`${name}: ${precision} session`);
      const session = await precisionSession(model, precision, c);
      try {
        for (const batch of c.batches) {
          const x = uniformInput([batch, model.inChans, ...model.inputSize]);
          const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', x.data, x.shape) };
          const theirFeeds = external ? { [external.inputNames[0]!]: new ort.Tensor('float32', x.data, x.shape) } : undefined;
          for (let i = 0; i < c.warmup; i++) {
            await session.run(feeds, [session.outputNames[0]!]);
            if (external) await external.run(theirFeeds!, [external.outputNames[0]!]);
          }
          const ours: number[] = [];
          const theirs: number[] = [];
          const start = performance.now();
          while (ours.length < c.minRuns || performance.now() - start < c.minSeconds * 1000) {
            let t = performance.now();
            await session.run(feeds, [session.outputNames[0]!]);
            ours.push(performance.now() - t);
            if (external) {
              t = performance.now();
              await external.run(theirFeeds!, [external.outputNames[0]!]);
              theirs.push(performance.now() - t);
            }
          }
          const timing = summarize(ours);
          const row: BenchRow = {
            model: name,
            precision,
            batch,
            inputSize: model.inputSize,
            cropSize,
            resizeShort,
            ...timing,
            imagesPerSecond: (1000 * batch) / timing.meanMs,
            gflopsPerSecond: (counts.flops * batch) / (timing.meanMs * 1e6),
          };
          if (external) {
            const t = summarize(theirs);
            row.compare = { file: c.compare!, ...t, ratio: timing.meanMs / t.meanMs };
          }
          rows.push(row);
          c.log?.(`${name} ${precision} batch ${batch}: ${timing.meanMs.toFixed(2)} ms`);
        }
      } finally {
        await session.release();
      }
    }
  } finally {
    await external?.release();
  }
  return rows;
}

const f2 = (v: number) => v.toFixed(2);

export function formatBench(rows: BenchRow[], machine: MachineInfo): string {
  const lines = [
    `${machine.cpu}, ${machine.cores} cores (${machine.isa.join(' ')}), ONNX Runtime ${machine.onnxruntime} ${machine.executionProvider} EP, ${machine.threads} threads`,
    `protocol: ${PROTOCOL}`,
    '',
    `${'model'.padEnd(26)} ${'prec'.padEnd(5)} ${'batch'.padStart(5)} ${'mean ms'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p95 ms'.padStart(9)} ${'img/s'.padStart(8)} ${'GFLOP/s'.padStart(8)}${rows.some((r) => r.compare) ? `  ${'compare ms'.padStart(10)} ${'ratio'.padStart(6)}` : ''}`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.model.padEnd(26)} ${r.precision.padEnd(5)} ${String(r.batch).padStart(5)} ${f2(r.meanMs).padStart(9)} ${f2(r.p50Ms).padStart(9)} ${f2(r.p95Ms).padStart(9)} ${r.imagesPerSecond.toFixed(1).padStart(8)} ${r.gflopsPerSecond.toFixed(1).padStart(8)}` +
        (r.compare ? `  ${f2(r.compare.meanMs).padStart(10)} ${r.compare.ratio.toFixed(3).padStart(6)}` : ''),
    );
  }
  if (machine.executionProvider === 'cpu' && rows.some((r) => r.precision === 'fp16')) lines.push('', "fp16: weights stored in float16; ONNX Runtime's x64 CPU EP computes them in fp32 (it inserts casts), so expect no speed-up here.");
  if (rows.some((r) => r.compare)) lines.push('', 'ratio = our mean latency / the compared model, timed alternately in one process (< 1: ours is faster).');
  return lines.join('\n');
}

/** The seed pages' layout: Models | Crop Size | Resize Short Size | one column per precision and batch (ms). */
export function markdownBench(rows: BenchRow[], machine: MachineInfo): string {
  const precisions = [...new Set(rows.map((r) => r.precision))];
  const batches = [...new Set(rows.map((r) => r.batch))].sort((a, b) => a - b);
  const cols = precisions.flatMap((p) => batches.map((b) => ({ p, b })));
  const header = `| Models | Crop Size | Resize Short Size | ${cols.map((c) => `${c.p.toUpperCase()}<br/>Batch Size=${c.b}<br/>(ms)`).join(' | ')} |`;
  const sep = `|${' --- |'.repeat(3 + cols.length)}`;
  const models = [...new Set(rows.map((r) => r.model))];
  const body = models.map((m) => {
    const any = rows.find((r) => r.model === m)!;
    const cells = cols.map((c) => rows.find((r) => r.model === m && r.precision === c.p && r.batch === c.b)?.meanMs);
    return `| ${m} | ${any.cropSize} | ${any.resizeShort} | ${cells.map((v) => (v === undefined ? '-' : f2(v))).join(' | ')} |`;
  });
  return [`${machine.cpu}, ${machine.threads} threads, ONNX Runtime ${machine.onnxruntime} (${machine.executionProvider}); mean latency per batch.`, '', header, sep, ...body].join('\n');
}

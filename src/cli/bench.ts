/**
 * `tsimm bench`: latency (mean, p50, p95 per batch) and throughput per model, precision and batch, as the seed
 * pages measure them; results saved as JSON with the machine's description.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { createModel, type Model } from '../model.js';
import { allEntries } from '../models/index.js';
import { benchModel, formatBench, machineInfo, markdownBench, PROTOCOL, type BenchRow, type Precision } from '../tasks/bench.js';
import { imageBatches } from '../tasks/quantize.js';
import { loadSeeds } from '../tasks/verify.js';
import { int, log, str, UsageError, type Command, type Values } from './args.js';
import { DEVICE_OPTIONS, deviceFrom } from './device.js';
import { imagesIn, WEIGHT_OPTIONS } from './model-args.js';
import { checkOutputDir, checkOutputFile } from './paths.js';
import { json, out, sizeOpt, withWeights } from './options.js';

const list_ = (v: Values, key: string, fallback: string) => (str(v, key) ?? fallback).split(',').map((x) => x.trim()).filter(Boolean);

export const bench: Command = {
  usage: 'MODEL... [--batch 1,4,8] [--precision fp32,int8,fp16] [--threads N] [--size N] [--json|--markdown] [--compare FILE.onnx] [--family F | --seed]',
  summary: 'Latency (mean, p50, p95 per batch) and throughput, like the seed pages; results saved as JSON with machine info.',
  options: {
    batch: { type: 'string', arg: 'B,B,..', help: 'batch sizes (default 1,4,8)' },
    precision: { type: 'string', arg: 'P,P,..', help: 'fp32, int8, fp16 (default fp32)' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime intra-op threads (default: all cores)' },
    size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
    warmup: { type: 'string', arg: 'N', help: 'untimed warm-up runs (default 10)' },
    'min-runs': { type: 'string', arg: 'N', help: 'at least this many timed runs (default 50)' },
    'min-seconds': { type: 'string', arg: 'S', help: 'and at least this long (default 5)' },
    compare: { type: 'string', arg: 'FILE.onnx', help: 'time this ONNX model alternately with ours and print the ratio' },
    calib: { type: 'string', arg: 'DIR', help: 'calibration images for int8 (default: random inputs; fine for timing only)' },
    family: { type: 'string', arg: 'NAME', help: 'every seed-page model of this family (resnet, res2net, resnest, regnet, efficientnet)' },
    seed: { type: 'boolean', help: 'every model of the seed pages' },
    'with-preprocess': { type: 'boolean', help: 'also time decode + preprocessing (images/s) on the --calib images or a generated photo' },
    out: { type: 'string', arg: 'DIR', help: 'directory for the results file (default ./bench/results/<machine>/, named by date)' },
    output: { type: 'string', short: 'o', arg: 'FILE.json', help: 'the results file itself (overrides --out)' },
    'no-save': { type: 'boolean', help: 'do not write the results file' },
    json: { type: 'boolean', help: 'print JSON' },
    markdown: { type: 'boolean', help: "print the seed pages' table layout" },
    ...WEIGHT_OPTIONS,
    pretrained: { type: 'boolean', help: 'load the pretrained weights (timing does not depend on them)' },
    ...DEVICE_OPTIONS,
  },
  async run(p, v) {
    let names = [...p];
    const family = str(v, 'family');
    if (family || v['seed']) {
      const seeds = loadSeeds();
      const fam = new Map(allEntries().map((e) => [e.name, e.family]));
      names.push(...Object.keys(seeds).filter((n) => v['seed'] || fam.get(n)?.toLowerCase() === family!.toLowerCase()));
    }
    if (!names.length) throw new UsageError('expected model names, --family or --seed');
    names = [...new Set(names)];
    const precisions = list_(v, 'precision', 'fp32') as Precision[];
    for (const x of precisions) if (!['fp32', 'fp16', 'int8'].includes(x)) throw new UsageError(`--precision takes fp32, int8, fp16; got ${x}`);
    const batches = list_(v, 'batch', '1,4,8').map(Number);
    if (batches.some((b) => !Number.isInteger(b) || b < 1)) throw new UsageError('--batch takes positive integers');
    const calibDir = str(v, 'calib');
    const outFile = str(v, 'output');
    if (outFile && !v['no-save']) checkOutputFile(outFile, '--output', 'bench.json');
    const outDir = str(v, 'out');
    if (outDir && !outFile && !v['no-save']) checkOutputDir(outDir, '--out');
    const config = {
      batches,
      precisions,
      threads: int(v, 'threads'),
      ...deviceFrom(v),
      size: sizeOpt(v),
      warmup: int(v, 'warmup', 0) ?? 10,
      minRuns: int(v, 'min-runs') ?? 50,
      minSeconds: Number(str(v, 'min-seconds') ?? 5),
      compare: str(v, 'compare'),
      calib: calibDir ? imagesIn(calibDir) : undefined,
      weights: (m: Model) => withWeights(m, v, !!v['pretrained']),
      log,
    };
    const machine = machineInfo(config.threads, config.device);
    const rows: BenchRow[] = [];
    for (const n of names) rows.push(...(await benchModel(n, config)));
    let preprocess: { imagesPerSecond: number; images: number } | undefined;
    if (v['with-preprocess']) preprocess = await benchPreprocess(names[0]!, config.calib);
    const result = { protocol: PROTOCOL, machine, date: new Date().toISOString(), config: { ...config, weights: undefined, log: undefined }, rows, preprocess };
    if (!v['no-save']) {
      let file = outFile;
      if (!file) {
        const dir = outDir ?? join('bench', 'results', hostname().replace(/[^\w.-]/g, '_'));
        mkdirSync(dir, { recursive: true });
        file = join(dir, `${result.date.slice(0, 19).replace(/:/g, '-')}.json`);
      }
      writeFileSync(file, json(result));
      process.stderr.write(`tsimm bench: results saved to ${resolve(file)}\n`);
    }
    if (v['json']) out(json(result));
    else if (v['markdown']) out(markdownBench(rows, machine));
    else out(formatBench(rows, machine) + (preprocess ? `\n\ndecode + preprocess: ${preprocess.imagesPerSecond.toFixed(1)} images/s (${preprocess.images} images, worker pool)` : ''));
    return 0;
  },
};

/** Decode + preprocess throughput with the worker pool (what eval overlaps with inference). */
async function benchPreprocess(name: string, files?: string[]): Promise<{ imagesPerSecond: number; images: number }> {
  const model = createModel(name);
  let list = files;
  if (!list?.length) {
    const { tmpdir } = await import('node:os');
    const sharp = (await import('sharp')).default;
    const file = join(tmpdir(), `tsimm-bench-${process.pid}.jpg`);
    // A 500x375 photo-sized JPEG, like an ImageNet validation image.
    const px = Buffer.alloc(500 * 375 * 3);
    for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) >>> 24;
    await sharp(px, { raw: { width: 500, height: 375, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
    list = Array<string>(64).fill(file);
  }
  const t0 = performance.now();
  let n = 0;
  for await (const b of imageBatches(model, list, 16)) n += b.shape[0]!;
  return { imagesPerSecond: n / ((performance.now() - t0) / 1000), images: n };
}

/**
 * `tsimm eval`: top-1/top-5 accuracy over an ImageFolder tree, a flat folder with labels, or IDX files (their test
 * split, through the training data loader); `--shard K/N` splits a run over processes and `--merge` adds them up.
 */
import { readFileSync } from 'node:fs';
import { idxDataset } from '../data/datasets.js';
import { findIdxFiles } from '../data/idx.js';
import { DataLoader, evalTransform } from '../data/loader.js';
import { resolvePreprocess, type PreprocessConfig } from '../data/preprocess.js';
import { createModel } from '../model.js';
import { evaluate, listDataset, readClassMap } from '../tasks/eval.js';
import { evaluateWeights, loaderSource } from '../train/fit.js';
import { InputError } from '../weights/tensor.js';
import { int, str, UsageError, type Command, type Values } from './args.js';
import { deviceFrom } from './device.js';
import { runPreprocess, WEIGHT_OPTIONS } from './model-args.js';
import { checkInputFile } from './paths.js';
import { inShard, json, out, PRECISION_OPTIONS, precisionSession, PREPROCESS_OPTIONS, preprocessFlags, SHARD_HELP, shardName, shardOpt, sizeOpt, weightsRun, withWeights, type Shard } from './options.js';

/** timm validate.py's summary line: accuracy and (error). */
const accLine = (top1: number, top5: number) => ` * Acc@1 ${top1.toFixed(3)} (${(100 - top1).toFixed(3)})  Acc@5 ${top5.toFixed(3)} (${(100 - top5).toFixed(3)})`;

/** The hit counts behind the percentages (exact: top1 is 100 × hits / n), which shards add up. */
const counts = (top1: number, top5: number, n: number) => ({ top1Hits: Math.round((top1 * n) / 100), top5Hits: Math.round((top5 * n) / 100) });

interface EvalJson {
  model: string;
  weights: string;
  shard?: string;
  listed: number;
  evaluated: number;
  top1Hits: number;
  top5Hits: number;
  loss?: number;
  failed?: { file: string; error: string }[];
  seconds?: number;
}

/** `eval --merge A.json B.json ...`: the shards' hits added up, as one Acc@1/Acc@5 over all their images. */
async function mergeEvals(files: string[], v: Values): Promise<number> {
  if (!files.length) throw new UsageError('--merge expects the `eval --json` files of the shards');
  const parts = files.map((f) => {
    let j: EvalJson;
    try {
      j = JSON.parse(readFileSync(checkInputFile(f, '--merge'), 'utf8')) as EvalJson;
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError(`${f} is not JSON: write it with tsimm eval --json (${(e as Error).message})`);
    }
    if (typeof j?.evaluated !== 'number' || typeof j.top1Hits !== 'number' || typeof j.top5Hits !== 'number') throw new InputError(`${f} has no top1Hits/top5Hits/evaluated counts: write it with tsimm eval --json (this version)`);
    return { file: f, ...j };
  });
  const first = parts[0]!;
  for (const q of parts) {
    if (q.model !== first.model || q.weights !== first.weights) throw new InputError(`${q.file} evaluated ${q.model} (${q.weights}) but ${first.file} ${first.model} (${first.weights}); merge the shards of one run`);
  }
  const shards = parts.map((q) => q.shard).filter((s): s is string => s !== undefined);
  const dup = shards.find((s, i) => shards.indexOf(s) !== i);
  if (dup) throw new InputError(`shard ${dup} is given twice; each shard's file once`);
  const of = new Set(shards.map((s) => s.split('/')[1]));
  if (shards.length === parts.length && of.size === 1 && shards.length < Number([...of][0])) {
    process.stderr.write(`tsimm eval: merging ${shards.length} of ${[...of][0]} shards; the result covers only their images\n`);
  }
  const sum = (f: (q: (typeof parts)[number]) => number) => parts.reduce((a, q) => a + f(q), 0);
  const evaluated = sum((q) => q.evaluated);
  if (!evaluated) throw new InputError(`the ${parts.length} files evaluated no images`);
  const hits1 = sum((q) => q.top1Hits);
  const hits5 = sum((q) => q.top5Hits);
  const top1 = (100 * hits1) / evaluated;
  const top5 = (100 * hits5) / evaluated;
  const loss = parts.every((q) => typeof q.loss === 'number') ? sum((q) => q.loss! * q.evaluated) / evaluated : undefined;
  const merged = { model: first.model, weights: first.weights, merged: parts.length, shards, listed: sum((q) => q.listed), evaluated, top1Hits: hits1, top5Hits: hits5, top1, top5, ...(loss !== undefined ? { loss } : {}), failed: parts.flatMap((q) => q.failed ?? []), seconds: sum((q) => q.seconds ?? 0) };
  if (v['json']) out(json(merged));
  else out([`${merged.model} (${merged.weights}): ${evaluated} of ${merged.listed} images evaluated in ${parts.length} parts${merged.failed.length ? `, ${merged.failed.length} failed or skipped` : ''}`, `${accLine(top1, top5)}${loss !== undefined ? `  loss ${loss.toFixed(4)}` : ''}`].join('\n'));
  return 0;
}

function isIdxFolder(dir: string): boolean {
  try {
    findIdxFiles(dir, 'test');
    return true;
  } catch {
    return false;
  }
}

/** The pipeline an evaluation ran, echoed so a number can be reproduced elsewhere. */
function preprocessLine(pp: PreprocessConfig, channels = 3): string {
  return `   preprocess: ${pp.backend === 'pil' ? 'PIL' : 'OpenCV'} ${pp.interpolation}, size ${pp.size.join('x')}, ${pp.backend === 'cv2' ? `resize_short ${pp.resizeShort ?? Math.round(pp.size[0] / pp.cropPct)}` : `crop_pct ${pp.cropPct}`}, crop ${pp.cropMode}, mean ${pp.mean.join('/')}, std ${pp.std.join('/')}${channels === 1 ? ', 1 channel (gray)' : ''}`;
}

/** `eval` on a folder of IDX files (MNIST/Fashion-MNIST): its t10k test split, through the training data loader. */
async function evalIdx(name: string, dir: string, v: Values, shard?: Shard): Promise<number> {
  const run = weightsRun(name, v);
  const all = await idxDataset(dir, { split: 'test', ...(int(v, 'limit') ? { limit: int(v, 'limit') } : {}) });
  const ds = shard ? all.subset(inShard([...all.samples.keys()], shard)) : all;
  if (!ds.length) throw new InputError(`shard ${shardName(shard!)} of ${dir} holds no images (${all.length} in the test split); use fewer shards`);
  const model = createModel(name, { inputSize: sizeOpt(v) ?? run?.size, ...(run ? { numClasses: run.numClasses, inChans: run.inChans } : {}) });
  await withWeights(model, v, true);
  if (model.numClasses !== ds.numClasses) throw new InputError(`${dir} has ${ds.numClasses} classes but the model has ${model.numClasses}; evaluate weights trained on it (--weights RUN/best.safetensors)`);
  const pre = resolvePreprocess(model.cfg, { ...runPreprocess(run), ...preprocessFlags(v), size: model.inputSize });
  const batch = int(v, 'batch') ?? 32;
  const workers = int(v, 'workers', 0);
  const loader = new DataLoader(ds, { batchSize: batch, shape: [model.inChans, ...model.inputSize], transform: evalTransform(pre, { channels: model.inChans as 1 | 3 }), shuffle: false, ...(workers !== undefined ? { workers } : {}) });
  const t0 = performance.now();
  try {
    const r = await evaluateWeights(model, model.weights!, loaderSource(loader, batch), 0, deviceFrom(v));
    const seconds = (performance.now() - t0) / 1000;
    const weights = str(v, 'weights') ?? `${model.name}.${model.cfg.tag}`;
    if (v['json']) out(json({ model: model.name, weights, layout: 'idx', ...(shard ? { shard: shardName(shard) } : {}), evaluated: r.count, listed: ds.length, top1: r.top1, top5: r.top5, ...counts(r.top1, r.top5, r.count), loss: r.loss, preprocess: pre, seconds }));
    else out([`${model.name} (${weights}): ${r.count} of ${ds.length} IDX test images evaluated${shard ? ` (shard ${shardName(shard)})` : ''}`, `${accLine(r.top1, r.top5)}  loss ${r.loss.toFixed(4)}`, preprocessLine(pre, model.inChans), `   ${(r.count / seconds).toFixed(1)} images/s (${seconds.toFixed(1)} s)`].join('\n'));
  } finally {
    await loader.close();
  }
  return 0;
}

export const evalCmd: Command = {
  usage: 'MODEL DIR [--batch 32] [--limit N] [--labels FILE] [--class-map FILE] [--shard K/N] [--json] | --merge SHARD.json...',
  summary: 'Top-1/top-5 accuracy over an ImageFolder tree (wnid folders), a flat folder with a labels file, or IDX files (test split).',
  options: {
    batch: { type: 'string', arg: 'N', help: 'batch size (default 32)' },
    limit: { type: 'string', arg: 'N', help: 'evaluate only the first N images (of the whole listing, before --shard)' },
    shard: { type: 'string', arg: 'K/N', help: `${SHARD_HELP} of the listing (class folders and their files sorted; a --labels file's line order; IDX file order); --json prints the counts --merge adds up` },
    merge: { type: 'boolean', help: 'merge `eval --json` outputs (one per shard, given as FILE...) into one Acc@1/Acc@5' },
    labels: { type: 'string', arg: 'FILE', help: 'flat layout: lines "file label" (index or wnid), or LOC_val_solution.csv' },
    'class-map': { type: 'string', arg: 'FILE', help: 'class names in index order (one per line) for non-ImageNet folders' },
    ...WEIGHT_OPTIONS,
    workers: { type: 'string', arg: 'N', help: 'preprocessing worker threads (default: cores − 1)' },
    json: { type: 'boolean', help: 'print JSON' },
    ...PRECISION_OPTIONS,
    ...PREPROCESS_OPTIONS,
  },
  async run(p, v) {
    if (v['merge']) return mergeEvals(p, v);
    if (p.length !== 2) throw new UsageError('expected a model name and a directory');
    const shard = shardOpt(v);
    if (isIdxFolder(p[1]!)) return evalIdx(p[0]!, p[1]!, v, shard);
    const classMapFile = str(v, 'class-map');
    const labels = str(v, 'labels');
    if (labels) checkInputFile(labels, '--labels');
    const run = weightsRun(p[0]!, v);
    // A fine-tuned run's class names map its folders (ImageFolder of the user's classes).
    const runMap = run?.classNames ? new Map(run.classNames.map((c, i) => [c, i])) : undefined;
    const listed = listDataset(p[1]!, { labels, classMap: classMapFile ? readClassMap(checkInputFile(classMapFile, '--class-map')) : runMap });
    // --limit cuts the whole listing first, so the shards of a limited run add up to the unsharded one.
    const limit = int(v, 'limit');
    const samples = limit ? listed.samples.slice(0, limit) : listed.samples;
    const data = shard ? { ...listed, samples: inShard(samples, shard), skipped: inShard(listed.skipped, shard) } : { ...listed, samples };
    const model = createModel(p[0]!, { inputSize: sizeOpt(v) ?? run?.size, ...(run ? { numClasses: run.numClasses, inChans: run.inChans } : {}) });
    await withWeights(model, v, true);
    if (shard && !data.samples.length) {
      // More shards than images: this one has nothing to do, and says so in a form --merge adds up.
      const empty = { model: model.name, weights: str(v, 'weights') ?? `${model.name}.${model.cfg.tag}`, layout: data.layout, shard: shardName(shard), listed: data.skipped.length, evaluated: 0, top1Hits: 0, top5Hits: 0, top1: 0, top5: 0, failed: data.skipped, seconds: 0 };
      out(v['json'] ? json(empty) : `${model.name}: shard ${shardName(shard)} holds no images (${samples.length} listed in all)`);
      return 0;
    }
    const bar = process.stderr.isTTY
      ? (done: number, total: number, ips: number) =>
          process.stderr.write(`\r${model.name}: ${done}/${total} images, ${ips.toFixed(1)} img/s, ETA ${ips > 0 ? Math.round((total - done) / ips) : '?'} s   ${done >= total ? '\n' : ''}`)
      : undefined;
    const session = (await precisionSession(model, v)) ?? (await model.createSession({ releaseWeights: true, ...deviceFrom(v) }));
    const r = await evaluate(model, data, { batchSize: int(v, 'batch'), preprocess: { ...runPreprocess(run), ...preprocessFlags(v) }, weights: str(v, 'weights'), onProgress: bar, workers: int(v, 'workers', 0), session });
    await session.release();
    for (const f of r.failed) process.stderr.write(`tsimm eval: skipped ${f.file}: ${f.error}\n`);
    if (v['json']) out(json({ ...r, ...counts(r.top1, r.top5, r.evaluated), ...(shard ? { shard: shardName(shard) } : {}) }));
    else {
      const pp = r.preprocess;
      out(
        [
          `${r.model} (${r.weights}): ${r.evaluated} of ${r.listed} images evaluated${shard ? ` (shard ${shardName(shard)})` : ''}${r.failed.length ? `, ${r.failed.length} failed or skipped (listed above on stderr)` : ''}`,
          accLine(r.top1, r.top5),
          preprocessLine(pp),
          `   ${r.imagesPerSecond.toFixed(1)} images/s (${r.seconds.toFixed(1)} s)`,
        ].join('\n'),
      );
    }
    return 0;
  },
};

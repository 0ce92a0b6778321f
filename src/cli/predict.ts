/** `tsimm predict`: the top-k classes of images, with the weights' own preprocessing (or a fine-tuned run's). */
import { createModel } from '../model.js';
import { classify } from '../tasks/classify.js';
import { int, UsageError, type Command } from './args.js';
import { deviceFrom } from './device.js';
import { runPreprocess, WEIGHT_OPTIONS } from './model-args.js';
import { inShard, json, out, PRECISION_OPTIONS, precisionSession, PREPROCESS_OPTIONS, preprocessFlags, SHARD_HELP, shardOpt, sizeOpt, weightsRun, withWeights, type Shard } from './options.js';

/** predict's share of its images: positions in the sorted paths (so every process agrees), kept in the order given. */
function shardImages(images: string[], s?: Shard): string[] {
  if (!s) return images;
  const mine = new Set(inShard([...images].sort(), s));
  return images.filter((f) => mine.has(f));
}

export const predict: Command = {
  usage: 'MODEL IMAGE... [--topk 5] [--weights FILE] [--shard K/N] [--json]',
  summary: 'Classify images with the pretrained weights (or --weights) and the preprocessing they were evaluated with.',
  options: {
    topk: { type: 'string', short: 'k', arg: 'K', help: 'how many classes per image (default 5)' },
    ...WEIGHT_OPTIONS,
    batch: { type: 'string', arg: 'N', help: 'images per inference batch (default 8)' },
    shard: { type: 'string', arg: 'K/N', help: `${SHARD_HELP} of the paths sorted (one process per shard)` },
    features: { type: 'boolean', help: 'also print the pooled pre-logits features (with --json)' },
    json: { type: 'boolean', help: 'print JSON' },
    ...PRECISION_OPTIONS,
    ...PREPROCESS_OPTIONS,
  },
  async run(p, v) {
    if (p.length < 2) throw new UsageError('expected a model name and at least one image');
    const [name, ...given] = p as [string, ...string[]];
    const topk = int(v, 'topk') ?? 5; // checked before any download
    const images = shardImages(given, shardOpt(v));
    const run = weightsRun(name, v);
    const model = createModel(name, { inputSize: sizeOpt(v) ?? run?.size, ...(run ? { numClasses: run.numClasses, inChans: run.inChans } : {}) });
    await withWeights(model, v, true);
    const lowered = await precisionSession(model, v);
    const session = lowered ?? (await model.createSession({ releaseWeights: true, ...deviceFrom(v) }));
    const preprocess = { ...runPreprocess(run), ...preprocessFlags(v) };
    const results = await classify(model, images, { topk, batchSize: int(v, 'batch'), preprocess, features: !!v['features'] && !lowered, session, ...(run?.classNames ? { classNames: run.classNames } : {}) });
    await session.release();
    if (v['json']) {
      out(json(results.map((r) => ({ ...r, features: r.features ? Array.from(r.features) : undefined }))));
    } else {
      const lines: string[] = [];
      for (const r of results) {
        if (r.error) continue; // said once, on stderr
        lines.push(r.image);
        for (const [i, q] of (r.predictions ?? []).entries()) lines.push(`  ${i + 1}. ${(q.prob * 100).toFixed(2).padStart(6)}%  ${String(q.index).padStart(4)} ${q.wnid ?? ''}  ${q.label}`);
      }
      if (lines.length) out(lines.join('\n'));
    }
    for (const r of results) if (r.error) process.stderr.write(`tsimm predict: error: ${r.error.includes(r.image) ? r.error : `${r.image}: ${r.error}`}\n`);
    return results.some((r) => r.error) ? 1 : 0;
  },
};

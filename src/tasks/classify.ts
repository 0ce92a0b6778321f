/**
 * Images → predictions: the model's own preprocessing (or overrides), batched inference on one session,
 * softmax, top-k with ImageNet labels. Decoding runs in a worker pool beside inference.
 */
import { imagenetClasses, shortName } from '../data/labels.js';
import { defaultPoolSize, PreprocessPool } from '../data/pool.js';
import { resolvePreprocess, type PreprocessConfig, type PreprocessOverrides } from '../data/preprocess.js';
import type { Model } from '../model.js';
import { softmax, topk } from '../math.js';
import { runSession, type Session } from '../runtime/session.js';

export interface Prediction {
  index: number;
  wnid?: string;
  label: string;
  prob: number;
}

export interface ImageResult {
  image: string;
  predictions?: Prediction[];
  /** Pooled pre-logits, when asked for. */
  features?: Float32Array;
  error?: string;
}

export interface ClassifyOptions {
  topk?: number;
  batchSize?: number;
  preprocess?: PreprocessOverrides;
  /** Also return the pooled pre-logits features. */
  features?: boolean;
  session?: Session;
  pool?: PreprocessPool;
  /** The classes of a fine-tuned model (its run's config.json), in index order. */
  classNames?: string[];
}

/** Preprocess a list of files into batches; a file that fails is reported, not fatal. */
export async function* preprocessBatches(files: string[], config: PreprocessConfig, batchSize: number, pool: PreprocessPool): AsyncGenerator<{ files: string[]; data: Float32Array; failed: { file: string; error: string }[] }> {
  const [h, w] = config.size;
  const per = 3 * h * w;
  const start = (i: number) => files.slice(i, i + batchSize).map((f) => pool.run(f, config).then((d) => ({ f, d }), (e: Error) => ({ f, e: e.message })));
  let pending = start(0);
  for (let i = 0; i < files.length; i += batchSize) {
    const current = pending;
    // Keep the next batch decoding while this one is inferred.
    pending = i + batchSize < files.length ? start(i + batchSize) : [];
    const done = await Promise.all(current);
    const ok = done.filter((x): x is { f: string; d: Float32Array } => 'd' in x);
    const data = new Float32Array(ok.length * per);
    ok.forEach((x, j) => data.set(x.d, j * per));
    yield { files: ok.map((x) => x.f), data, failed: done.filter((x): x is { f: string; e: string } => 'e' in x).map((x) => ({ file: x.f, error: x.e })) };
  }
}

export function labelOf(index: number, numClasses: number, classNames?: string[]): { wnid?: string; label: string } {
  if (classNames?.[index] !== undefined) return { label: classNames[index]! };
  if (numClasses !== 1000) return { label: `class ${index}` };
  const c = imagenetClasses()[index]!;
  return { wnid: c.wnid, label: shortName(c) };
}

/** Classify image files with `model` (weights must be loaded); one result per file, in order. */
export async function classify(model: Model, images: string[], o: ClassifyOptions = {}): Promise<ImageResult[]> {
  const config = resolvePreprocess(model.cfg, { size: model.inputSize, ...o.preprocess });
  const session = o.session ?? (await model.createSession());
  const pool = o.pool ?? new PreprocessPool(Math.min(images.length, defaultPoolSize()));
  const byImage = new Map<string, ImageResult>();
  try {
    for await (const batch of preprocessBatches(images, config, o.batchSize ?? 8, pool)) {
      for (const f of batch.failed) byImage.set(f.file, { image: f.file, error: f.error });
      if (!batch.files.length) continue;
      const out = await runSession(session, { shape: [batch.files.length, 3, ...config.size], data: batch.data }, o.features ? ['logits', 'features'] : ['logits']);
      const logits = out['logits']!;
      const classes = logits.shape[1]!;
      batch.files.forEach((file, i) => {
        const probs = softmax(logits.data.subarray(i * classes, (i + 1) * classes));
        const predictions = topk(probs, o.topk ?? 5).map((index) => ({ index, ...labelOf(index, classes, o.classNames ?? model.classNames), prob: probs[index]! }));
        const f = out['features'];
        const dim = f?.shape[1] ?? 0;
        byImage.set(file, { image: file, predictions, features: f ? f.data.slice(i * dim, (i + 1) * dim) : undefined });
      });
    }
  } finally {
    if (!o.pool) await pool.close();
    if (!o.session) await session.release();
  }
  return images.map((f) => byImage.get(f)!);
}

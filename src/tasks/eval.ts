/**
 * `tsimm eval`: top-1/top-5 over a labelled image set, like timm's validate.py. Layouts: an ImageFolder tree
 * (one folder per class: ImageNet wnids, class indices, or names listed in a class map) or a flat folder plus
 * a labels file (`file label` lines, label an index or a wnid; or ImageNet's LOC_val_solution.csv).
 * Bad images are reported and counted; the run goes on.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { imagenetClasses } from '../data/labels.js';
import { PreprocessPool } from '../data/pool.js';
import { resolvePreprocess, type PreprocessConfig, type PreprocessOverrides } from '../data/preprocess.js';
import type { Model } from '../model.js';
import { runSession, type Session } from '../runtime/session.js';
import { InputError } from '../weights/tensor.js';
import { Accuracy } from '../math.js';
import { preprocessBatches } from './classify.js';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.bmp']);

export interface Sample {
  file: string;
  target: number;
}

export interface Dataset {
  samples: Sample[];
  /** Entries that could not be listed or labelled. */
  skipped: { file: string; error: string }[];
  layout: 'imagefolder' | 'labels-file';
}

function classIndex(name: string, classMap?: Map<string, number>): number | undefined {
  if (classMap) return classMap.get(name);
  const byWnid = imagenetClasses().find((c) => c.wnid === name);
  if (byWnid) return byWnid.index;
  return /^\d+$/.test(name) ? Number(name) : undefined;
}

/** A class map file: one class name per line (index = line number), or `name<TAB|space>index`. */
export function readClassMap(path: string): Map<string, number> {
  const m = new Map<string, number>();
  readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .forEach((line, i) => {
      const parts = line.split(/[\t ,]+/);
      m.set(parts[0]!, parts.length > 1 && /^\d+$/.test(parts[1]!) ? Number(parts[1]) : i);
    });
  return m;
}

export function listDataset(dir: string, o: { labels?: string; classMap?: Map<string, number> } = {}): Dataset {
  const skipped: Dataset['skipped'] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read the directory ${dir}: ${code === 'ENOENT' ? 'it does not exist' : code === 'ENOTDIR' ? 'it is a file' : (e as Error).message}`);
  }
  const samples: Sample[] = [];
  if (o.labels) {
    let text: string;
    try {
      text = readFileSync(o.labels, 'utf8');
    } catch (e) {
      throw new InputError(`cannot read the labels file ${o.labels}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    for (const [n, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (!line || /^ImageId,/i.test(line)) continue;
      // `file label`, `file,label` or LOC_val_solution.csv's `ImageId,wnid x y x y ...`.
      const cut = line.includes(',') ? line.indexOf(',') : line.search(/\s/);
      const [file, rest] = cut < 0 ? [line, ''] : [line.slice(0, cut), line.slice(cut + 1).trim()];
      // A class name with spaces ("Ankle boot") is the whole rest when the class map has it; else the first token
      // (LOC_val_solution.csv has a box after the wnid).
      const label = o.classMap?.has(rest) ? rest : rest.split(/\s+/)[0];
      if (!file || !label) throw new InputError(`${o.labels}:${n + 1}: expected "file label" (label an index or a wnid), got "${line.slice(0, 80)}"`);
      const target = classIndex(label, o.classMap);
      if (target === undefined && !o.classMap && !/^n\d{8}$/.test(label)) {
        throw new InputError(`${o.labels}:${n + 1}: "${label}" is neither a class index nor an ImageNet wnid (line "${line.slice(0, 80)}")`);
      }
      const path = [join(dir, file!), join(dir, `${file}.JPEG`)].find((p) => {
        try {
          return statSync(p).isFile();
        } catch {
          return false;
        }
      });
      if (target === undefined) skipped.push({ file: file!, error: `unknown label "${label}"` });
      else if (!path) skipped.push({ file: file!, error: 'listed in the labels file but not found' });
      else samples.push({ file: path, target });
    }
    return { samples, skipped, layout: 'labels-file' };
  }
  const dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  if (!dirs.length) throw new InputError(`${dir} has no class folders; give --labels FILE for a flat folder of images`);
  for (const d of dirs) {
    const target = classIndex(d, o.classMap);
    if (target === undefined) {
      skipped.push({ file: join(dir, d), error: `folder name "${d}" is no ImageNet wnid or class index; give --class-map FILE` });
      continue;
    }
    let files: string[];
    try {
      files = readdirSync(join(dir, d)).sort();
    } catch (e) {
      skipped.push({ file: join(dir, d), error: (e as Error).message });
      continue;
    }
    for (const f of files) if (IMAGE_EXT.has(extname(f).toLowerCase())) samples.push({ file: join(dir, d, f), target });
  }
  return { samples, skipped, layout: 'imagefolder' };
}

export interface EvalResult {
  model: string;
  weights: string;
  preprocess: PreprocessConfig;
  layout: Dataset['layout'];
  /** Files listed: evaluated + failed (unreadable images, unlabelled entries). */
  listed: number;
  evaluated: number;
  top1: number;
  top5: number;
  failed: { file: string; error: string }[];
  seconds: number;
  imagesPerSecond: number;
}

export interface EvalOptions {
  batchSize?: number;
  limit?: number;
  preprocess?: PreprocessOverrides;
  weights?: string;
  onProgress?: (done: number, total: number, imagesPerSecond: number) => void;
  workers?: number;
  /** A session to run instead of the model's fp32 one (an int8 model). */
  session?: Session;
}

export async function evaluate(model: Model, data: Dataset, o: EvalOptions = {}): Promise<EvalResult> {
  const samples = o.limit ? data.samples.slice(0, o.limit) : data.samples;
  if (!samples.length) throw new InputError(`no images to evaluate${data.skipped.length ? ` (${data.skipped.length} entries skipped; first: ${data.skipped[0]!.file}: ${data.skipped[0]!.error})` : ''}`);
  const config = resolvePreprocess(model.cfg, { size: model.inputSize, ...o.preprocess });
  const target = new Map(samples.map((s) => [s.file, s.target]));
  const session = o.session ?? (await model.createSession());
  const pool = new PreprocessPool(o.workers);
  const failed = [...data.skipped];
  const acc = new Accuracy();
  const t0 = performance.now();
  try {
    for await (const batch of preprocessBatches(samples.map((s) => s.file), config, o.batchSize ?? 32, pool)) {
      failed.push(...batch.failed);
      if (batch.files.length) {
        const out = await runSession(session, { shape: [batch.files.length, 3, ...config.size], data: batch.data }, ['logits']);
        const classes = out['logits']!.shape[1]!;
        batch.files.forEach((file, i) => acc.add(out['logits']!.data.subarray(i * classes, (i + 1) * classes), target.get(file)!));
      }
      o.onProgress?.(acc.count + batch.failed.length, samples.length, acc.count / ((performance.now() - t0) / 1000));
    }
  } finally {
    await pool.close();
    if (!o.session) await session.release();
  }
  const seconds = (performance.now() - t0) / 1000;
  const n = acc.count;
  if (!n) throw new InputError(`none of the ${samples.length} images could be evaluated (first error: ${failed[0]?.file}: ${failed[0]?.error})`);
  return {
    model: model.name,
    weights: o.weights ?? `${model.name}.${model.cfg.tag}`,
    preprocess: config,
    layout: data.layout,
    listed: samples.length + data.skipped.length,
    evaluated: n,
    top1: acc.top1,
    top5: acc.top5,
    failed,
    seconds,
    imagesPerSecond: n / seconds,
  };
}


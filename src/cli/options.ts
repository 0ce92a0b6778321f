/**
 * Option tables and helpers the model commands share: preprocessing and precision flags, --weights read from the
 * parsed values, --shard K/N, one model name, and printing results (JSON or lines) on stdout.
 */
import { DEFAULT_MAX_PIXELS, type PreprocessOverrides } from '../data/preprocess.js';
import type { Model } from '../model.js';
import type { RunConfig } from '../node/run-config.js';
import { createSession } from '../runtime/session.js';
import { calibrate, imageBatches, int8Onnx } from '../tasks/quantize.js';
import { int, oneOf, required, str, UsageError, type Command, type Values } from './args.js';
import { DEVICE_OPTIONS, deviceFrom } from './device.js';
import { imagesIn, loadWeights, trainedRun } from './model-args.js';

export const json = (x: unknown) => `${JSON.stringify(x, null, 2)}\n`;
export const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);

export function sizeOpt(v: Values): number | undefined {
  return int(v, 'size');
}

export function oneName(p: string[], what = 'a model name'): string {
  if (p.length !== 1) throw new UsageError(p.length ? `expected one model name, got ${p.length}` : `expected ${what}`);
  return p[0]!;
}

/** --weights/--keys, else the pretrained weights when `pretrained`. */
export const withWeights = (model: Model, v: Values, pretrained: boolean) => loadWeights(model, str(v, 'weights'), str(v, 'keys'), pretrained);
/** The fine-tuned run --weights came from, if any. */
export const weightsRun = (name: string, v: Values): RunConfig | undefined => trainedRun(name, str(v, 'weights'), str(v, 'keys'));

export const PRECISION_OPTIONS: Command['options'] = {
  precision: { type: 'string', arg: 'fp32|fp16|int8', help: 'fp16 runs a float16 graph (fp32 in and out; for GPUs), int8 a model quantized on --calib images (default fp32)' },
  calib: { type: 'string', arg: 'DIR', help: 'calibration images for --precision int8' },
  ...DEVICE_OPTIONS,
};

/** A session for `--precision fp16|int8` (int8 calibrated on --calib) on --device, or undefined for fp32. */
export async function precisionSession(model: Model, v: Values) {
  const precision = oneOf(v, 'precision', ['fp32', 'fp16', 'int8'] as const) ?? 'fp32';
  if (precision === 'fp32') return undefined;
  if (precision === 'fp16') return createSession(model.toOnnx({ float16: true, outputs: ['logits'] }), deviceFrom(v));
  const dir = required(v, 'calib', '--precision int8 calibrates activation ranges on real images');
  return createSession(int8Onnx(model, await calibrate(model, imageBatches(model, imagesIn(dir)))), deviceFrom(v));
}

/** The preprocessing flags every image command takes (they override the weights' own pipeline). */
export const PREPROCESS_OPTIONS: Command['options'] = {
  size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
  'crop-pct': { type: 'string', arg: 'F', help: 'centre crop fraction (timm crop_pct)' },
  'crop-mode': { type: 'string', arg: 'center|squash|border', help: 'how the image is fit to the size' },
  interpolation: { type: 'string', arg: 'bilinear|bicubic', help: 'resize filter' },
  'resize-backend': { type: 'string', arg: 'pil|cv2', help: "PIL (timm) or OpenCV (PaddleClas) resize" },
  mean: { type: 'string', arg: 'R,G,B', help: 'normalization mean' },
  std: { type: 'string', arg: 'R,G,B', help: 'normalization std' },
  'exif-rotate': { type: 'string', arg: 'on|off', help: 'apply EXIF orientation (default: as the reference: cv2 on, PIL off)' },
  'max-pixels': { type: 'string', arg: 'N', help: `refuse larger images (default ${DEFAULT_MAX_PIXELS}: where PIL raises DecompressionBombError, 2 × its MAX_IMAGE_PIXELS)` },
};

function triple(v: Values, key: string): [number, number, number] | undefined {
  const x = str(v, key);
  if (x === undefined) return undefined;
  const n = x.split(',').map(Number);
  if (n.length !== 3 || n.some((d) => !Number.isFinite(d))) throw new UsageError(`--${key} takes three numbers, like 0.485,0.456,0.406`);
  if (key === 'std' && n.some((d) => d <= 0)) throw new UsageError(`--std takes three positive numbers (it divides), got ${x}`);
  return n as [number, number, number];
}

export function preprocessFlags(v: Values): PreprocessOverrides {
  const o: PreprocessOverrides = {};
  const cropPct = str(v, 'crop-pct');
  if (cropPct !== undefined) o.cropPct = Number(cropPct);
  o.cropMode = oneOf(v, 'crop-mode', ['center', 'squash', 'border'] as const);
  o.interpolation = oneOf(v, 'interpolation', ['bilinear', 'bicubic'] as const);
  o.backend = oneOf(v, 'resize-backend', ['pil', 'cv2'] as const);
  o.mean = triple(v, 'mean');
  o.std = triple(v, 'std');
  const exif = oneOf(v, 'exif-rotate', ['on', 'off'] as const);
  if (exif) o.exifRotate = exif === 'on';
  o.maxPixels = int(v, 'max-pixels');
  for (const k of Object.keys(o) as (keyof PreprocessOverrides)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** `--shard K/N` of predict and eval: one process per shard, each taking every N-th item. */
export interface Shard {
  index: number;
  count: number;
}

export const SHARD_HELP = 'this process takes shard K of N (0-based): the images at positions i with i % N == K';

/** `--shard K/N`, 0 ≤ K < N. */
export function shardOpt(v: Values): Shard | undefined {
  const s = str(v, 'shard');
  if (s === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) throw new UsageError(`--shard takes K/N with 0 ≤ K < N (0/4 is the first of four shards), got "${s}"`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

export const shardName = (s: Shard) => `${s.index}/${s.count}`;
export const inShard = <T>(xs: readonly T[], s: Shard): T[] => xs.filter((_, i) => i % s.count === s.index);

/**
 * Train-time augmentation with timm's semantics and defaults, on uint8 HWC RGB images (no Node APIs: the
 * browser build may use it).
 *
 * The pipeline is timm's `transforms_imagenet_train` (what `create_transform(is_training=True)` builds):
 *   RandomResizedCropAndInterpolation → RandomHorizontalFlip → (RandAugment | ColorJitter) → ToTensor →
 *   Normalize → RandomErasing.
 * As in timm, colour jitter is skipped when an auto-augment policy is set (unless `forceColorJitter`), and the
 * RandAugment geometric ops fill with the mean colour `round(255·mean)` and resample with the model's
 * interpolation (both random per op when the interpolation is 'random').
 *
 * Every pixel operation reproduces Pillow 9.4 (what timm calls): ImageOps LUTs, ImageEnhance's blend with its
 * float32 arithmetic and truncation, the SMOOTH 3×3 filter, Image.transform(AFFINE) with bilinear/bicubic and
 * Image.rotate's matrix. All randomness comes from one seeded `Rng` whose state is four uint32 numbers.
 */
import { roundHalfEven } from '../math.js';
import { type PilFilter, type RgbImage } from './resize.js';
import { Rng } from '../util/rng.js';
import { rrcParams, resizedCrop, hflip, vflip, type Fill, colorJitter } from './pil-ops.js';
import { parseRandAugment, randAugment } from './randaugment.js';
import { toNormalizedTensor, type EraseMode, type RandomErasingOptions, randomErasing } from './erasing.js';

// The pieces live in their own files; re-exported so `augment.js` stays the one import for the whole pipeline.
export { Rng, deriveRng, type RngState } from '../util/rng.js';
export * from './pil-ops.js';
export * from './randaugment.js';
export * from './erasing.js';

// ---------------------------------------------------------------------------------------------------------
// The factory

/** What `trainTransform` needs from a model's pretrained config (a `PretrainedCfg` fits). */
export interface TrainTransformConfig {
  /** [C, H, W]. */
  inputSize: readonly [number, number, number] | readonly number[];
  interpolation: PilFilter;
  mean: readonly [number, number, number] | readonly number[];
  std: readonly [number, number, number] | readonly number[];
}

export interface TrainTransformOptions {
  /** Output size: one number (square) or [height, width]. Default: the config's input size. */
  size?: number | [number, number];
  /** RandomResizedCrop area range. Default [0.08, 1]. */
  scale?: [number, number];
  /** RandomResizedCrop aspect (w/h) range, sampled log-uniform. Default [3/4, 4/3]. */
  ratio?: [number, number];
  /** Horizontal flip probability. Default 0.5. */
  hflip?: number;
  /** Vertical flip probability. Default 0. */
  vflip?: number;
  /** ColorJitter strength: v for brightness = contrast = saturation, or [b, c, s]; 0/null disables. Default 0.4. */
  colorJitter?: number | [number, number, number] | null;
  /** Apply colour jitter only with this probability (timm's color_jitter_prob). Default: always. */
  colorJitterProb?: number;
  /** Keep colour jitter when an auto-augment policy is set (timm disables it then). Default false. */
  forceColorJitter?: boolean;
  /** timm RandAugment string, e.g. 'rand-m9-mstd0.5' (undefined: none). */
  autoAugment?: string;
  /** RandomErasing probability. Default 0. */
  reprob?: number;
  /** RandomErasing mode. Default 'pixel' (timm train.py's --remode). */
  remode?: EraseMode;
  /** RandomErasing boxes per sample. Default 1. */
  recount?: number;
  /** Resize (and RandAugment resample) interpolation; 'random' picks per call. Default: the config's. */
  interpolation?: PilFilter | 'random';
  mean?: [number, number, number];
  std?: [number, number, number];
  /** RandAugment geometric fill. Default round(255·mean), as timm's create_transform sets img_mean. */
  fill?: Fill;
}

export interface ResolvedTrainOptions {
  size: [number, number];
  scale: [number, number];
  ratio: [number, number];
  hflip: number;
  vflip: number;
  colorJitter: [number, number, number] | null;
  colorJitterProb: number | undefined;
  autoAugment: string | undefined;
  reprob: number;
  remode: EraseMode;
  recount: number;
  interpolation: PilFilter | 'random';
  mean: [number, number, number];
  std: [number, number, number];
  fill: Fill;
}

export interface TrainTransform {
  /** The full pipeline: a float32 [3, H, W] tensor (written into `out` at `offset` when given). */
  (img: RgbImage, rng: Rng, out?: Float32Array, offset?: number): Float32Array;
  /** The image stages only (crop, flips, RandAugment or jitter): uint8 HWC of `size`. */
  augment(img: RgbImage, rng: Rng): RgbImage;
  readonly options: ResolvedTrainOptions;
}

const triple = (v: readonly number[], what: string): [number, number, number] => {
  if (v.length !== 3 || !v.every(Number.isFinite)) throw new RangeError(`${what} must be 3 finite numbers`);
  return [v[0]!, v[1]!, v[2]!];
};

/** Resolve options against timm's defaults and the model's config (validates everything up front). */
export function resolveTrainOptions(config: TrainTransformConfig, o: TrainTransformOptions = {}): ResolvedTrainOptions {
  const size: [number, number] = o.size === undefined ? [config.inputSize[1]!, config.inputSize[2]!] : typeof o.size === 'number' ? [o.size, o.size] : [o.size[0], o.size[1]];
  if (!size.every((s) => Number.isInteger(s) && s > 0)) throw new RangeError(`size must be positive integers, got ${size.join('x')}`);
  const scale = o.scale ?? [0.08, 1];
  if (!(scale[0] > 0 && scale[0] <= scale[1])) throw new RangeError(`scale must satisfy 0 < min <= max, got [${scale.join(', ')}]`);
  const ratio = o.ratio ?? [3 / 4, 4 / 3];
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1])) throw new RangeError(`ratio must satisfy 0 < min <= max, got [${ratio.join(', ')}]`);
  const prob = (v: number, what: string) => {
    if (!(v >= 0 && v <= 1)) throw new RangeError(`${what} must be a probability in [0, 1], got ${v}`);
    return v;
  };
  const cj = o.colorJitter === undefined ? 0.4 : o.colorJitter;
  const colorJitter = cj === null || cj === 0 ? null : typeof cj === 'number' ? ([cj, cj, cj] as [number, number, number]) : triple(cj, 'colorJitter');
  if (colorJitter && !colorJitter.every((v) => v >= 0)) throw new RangeError('colorJitter must be >= 0');
  if (o.autoAugment !== undefined && o.autoAugment !== '') {
    if (!o.autoAugment.startsWith('rand')) throw new RangeError(`only RandAugment ('rand-…') auto-augment is implemented, got '${o.autoAugment}'`);
    parseRandAugment(o.autoAugment);
  }
  const autoAugment = o.autoAugment || undefined;
  const mean = o.mean ? triple(o.mean, 'mean') : triple(config.mean, 'mean');
  const std = o.std ? triple(o.std, 'std') : triple(config.std, 'std');
  const fill = o.fill ? triple(o.fill, 'fill') : (mean.map((m) => Math.min(255, roundHalfEven(255 * m))) as Fill);
  const disableJitter = autoAugment !== undefined && !(o.forceColorJitter || autoAugment.includes('3a'));
  const recount = o.recount ?? 1;
  if (!(Number.isInteger(recount) && recount >= 1)) throw new RangeError(`recount must be an integer >= 1, got ${recount}`);
  const remode = o.remode ?? 'pixel';
  if (!['pixel', 'rand', 'const'].includes(remode)) throw new RangeError(`remode must be pixel, rand or const, got '${remode}'`);
  const interpolation = o.interpolation ?? config.interpolation;
  if (!['bilinear', 'bicubic', 'random'].includes(interpolation)) throw new RangeError(`interpolation must be bilinear, bicubic or random, got '${interpolation}'`);
  return {
    size,
    scale: [scale[0], scale[1]],
    ratio: [ratio[0], ratio[1]],
    hflip: prob(o.hflip ?? 0.5, 'hflip'),
    vflip: prob(o.vflip ?? 0, 'vflip'),
    colorJitter: disableJitter ? null : colorJitter,
    colorJitterProb: o.colorJitterProb === undefined ? undefined : prob(o.colorJitterProb, 'colorJitterProb'),
    autoAugment,
    reprob: prob(o.reprob ?? 0, 'reprob'),
    remode,
    recount,
    interpolation,
    mean,
    std,
    fill,
  };
}

/** The geometric first step of a training transform: an image to the training size, drawing from `rng`. */
export type TrainCrop = (img: RgbImage, rng: Rng, o: ReturnType<typeof resolveTrainOptions>) => RgbImage;

/** The resize filter of one sample ('random': bilinear or bicubic, one draw). */
export const sampleFilter = (interpolation: ReturnType<typeof resolveTrainOptions>['interpolation'], rng: Rng): PilFilter =>
  interpolation === 'random' ? (rng.random() < 0.5 ? 'bilinear' : 'bicubic') : interpolation;

/** timm's RandomResizedCrop: the box first, then the filter (the order of timm's draws). */
const randomResizedCrop: TrainCrop = (img, rng, o) => {
  const box = rrcParams(img.width, img.height, o.scale, o.ratio, rng);
  return resizedCrop(img, box, o.size[1], o.size[0], sampleFilter(o.interpolation, rng));
};

/**
 * timm's training transform (`create_transform(is_training=True)` with the given options) as one function
 * of (image, rng). Deterministic: the same image, options and RNG state give the same tensor. `cropStep` replaces
 * RandomResizedCrop (the small-image recipe pads and crops instead); the rest of the pipeline is the same.
 */
export function trainTransform(config: TrainTransformConfig, options: TrainTransformOptions = {}, cropStep: TrainCrop = randomResizedCrop): TrainTransform {
  const o = resolveTrainOptions(config, options);
  const [outH, outW] = o.size;
  const ra = o.autoAugment ? randAugment(o.autoAugment, { fill: o.fill, interpolation: o.interpolation }) : undefined;
  const augment = (img: RgbImage, rng: Rng): RgbImage => {
    if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * 3) throw new RangeError(`bad RGB image ${img.width}x${img.height} with ${img.data.length} bytes`);
    let x = cropStep(img, rng, o);
    if (o.hflip > 0 && rng.random() < o.hflip) x = hflip(x);
    if (o.vflip > 0 && rng.random() < o.vflip) x = vflip(x);
    if (ra) x = ra(x, rng);
    if (o.colorJitter && (o.colorJitterProb === undefined || rng.random() < o.colorJitterProb)) {
      x = colorJitter(x, { brightness: o.colorJitter[0], contrast: o.colorJitter[1], saturation: o.colorJitter[2] }, rng);
    }
    return x;
  };
  const erase: RandomErasingOptions = { probability: o.reprob, mode: o.remode, minCount: 1, maxCount: o.recount };
  const fn = ((img: RgbImage, rng: Rng, out?: Float32Array, offset = 0): Float32Array => {
    const x = augment(img, rng);
    const t = toNormalizedTensor(x, o.mean, o.std, out ?? new Float32Array(3 * outH * outW), offset);
    if (o.reprob > 0) randomErasing(t, 3, outH, outW, erase, rng, offset);
    return t;
  }) as TrainTransform;
  Object.defineProperty(fn, 'augment', { value: augment });
  Object.defineProperty(fn, 'options', { value: o });
  return fn;
}

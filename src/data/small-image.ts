/**
 * The small-image training recipe (CIFAR/MNIST style): resize the whole image to the training size, pad it by a
 * few pixels and take a random crop of the training size (a translation of at most `padding` px), then flip.
 * timm's RandomResizedCrop with scale (0.08, 1) keeps as little as 8 % of the area, which on a 28 px garment
 * leaves a few unrecognisable pixels; below SMALL_IMAGE_MAX px `tsimm train` uses this recipe by default.
 */
import { colorJitter, hflip, randAugment, randomErasing, resolveTrainOptions, toNormalizedTensor, vflip, type Rng, type TrainTransform, type TrainTransformConfig, type TrainTransformOptions } from './augment.js';
import { crop, resizePil, type PilFilter, type RgbImage } from './resize.js';

/** Training sizes up to this (px, the larger side) get the small-image recipe by default. */
export const SMALL_IMAGE_MAX = 64;

/** Runs shorter than this train small images without the random shift (padding 0) unless asked. */
export const SHIFT_MIN_EPOCHS = 10;

/** Padding of the small-image recipe at `size` px: 4 at 32 px (the CIFAR recipe), an eighth of the size. */
export const defaultPadding = (size: number): number => Math.max(1, Math.round(size / 8));

/**
 * Resize `img` to outW×outH, pad by `padding` px of `fill` on every side and crop outW×outH at a random offset
 * (torchvision's RandomCrop(size, padding)); the offsets are two draws of `rng`.
 */
export function padCrop(img: RgbImage, outW: number, outH: number, padding: number, filter: PilFilter, rng: Rng, fill = 0): RgbImage {
  const x = img.width === outW && img.height === outH ? img : resizePil(img, outW, outH, filter);
  if (padding <= 0) return x;
  const top = rng.int(0, 2 * padding) - padding;
  const left = rng.int(0, 2 * padding) - padding;
  return crop(x, left, top, outW, outH, fill);
}

export interface SmallImageOptions extends TrainTransformOptions {
  /** Pixels of padding (and so the largest shift). Default: defaultPadding of the size. */
  padding?: number;
}

/** The small-image training transform, with the shape of augment.ts's trainTransform (scale/ratio unused). */
export function smallImageTransform(config: TrainTransformConfig, options: SmallImageOptions = {}): TrainTransform {
  const o = resolveTrainOptions(config, options);
  const [outH, outW] = o.size;
  const padding = options.padding ?? defaultPadding(Math.max(outH, outW));
  if (!(Number.isInteger(padding) && padding >= 0)) throw new RangeError(`padding must be an integer >= 0, got ${padding}`);
  const ra = o.autoAugment ? randAugment(o.autoAugment, { fill: o.fill, interpolation: o.interpolation }) : undefined;
  const augment = (img: RgbImage, rng: Rng): RgbImage => {
    if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * 3) throw new RangeError(`bad RGB image ${img.width}x${img.height} with ${img.data.length} bytes`);
    const filter: PilFilter = o.interpolation === 'random' ? (rng.random() < 0.5 ? 'bilinear' : 'bicubic') : o.interpolation;
    let x = padCrop(img, outW, outH, padding, filter, rng);
    if (o.hflip > 0 && rng.random() < o.hflip) x = hflip(x);
    if (o.vflip > 0 && rng.random() < o.vflip) x = vflip(x);
    if (ra) x = ra(x, rng);
    if (o.colorJitter && (o.colorJitterProb === undefined || rng.random() < o.colorJitterProb)) {
      x = colorJitter(x, { brightness: o.colorJitter[0], contrast: o.colorJitter[1], saturation: o.colorJitter[2] }, rng);
    }
    return x;
  };
  const fn = ((img: RgbImage, rng: Rng, out?: Float32Array, offset = 0): Float32Array => {
    const t = toNormalizedTensor(augment(img, rng), o.mean, o.std, out ?? new Float32Array(3 * outH * outW), offset);
    if (o.reprob > 0) randomErasing(t, 3, outH, outW, { probability: o.reprob, mode: o.remode, minCount: 1, maxCount: o.recount }, rng, offset);
    return t;
  }) as TrainTransform;
  Object.defineProperty(fn, 'augment', { value: augment });
  Object.defineProperty(fn, 'options', { value: o });
  return fn;
}

/** What `tsimm train` trains with when the user does not say: the recipe for the size, and why. */
export interface TrainRecipeDefaults {
  crop: 'random-resized' | 'pad';
  padding?: number;
  scale?: [number, number];
  ratio?: [number, number];
  hflip: number;
  colorJitter: number;
  /** Evaluation crop_pct (1: the whole image, as trained on). */
  evalCropPct?: number;
  /** One line for the log. */
  note: string;
}

/**
 * Defaults for a training size: timm's ImageNet recipe (RandomResizedCrop (0.08, 1), flip, jitter 0.4) above
 * SMALL_IMAGE_MAX px, the small-image recipe (pad + random crop, flip, no jitter, whole-image evaluation) at or
 * below it. Options the user gave (`given`) are kept; a --scale or --ratio asks for RandomResizedCrop.
 */
export function trainRecipeDefaults(size: number, given: { scale?: boolean; ratio?: boolean; hflip?: number; colorJitter?: number; padding?: number }, epochs = Infinity): TrainRecipeDefaults {
  const hflip = given.hflip ?? 0.5;
  if (size > SMALL_IMAGE_MAX || given.scale || given.ratio) {
    const colorJitter = given.colorJitter ?? 0.4;
    return { crop: 'random-resized', hflip, colorJitter, note: `train transform: RandomResizedCrop ${size} px${given.scale || given.ratio ? '' : ' (timm\'s scale 0.08–1, ratio 3/4–4/3)'}, hflip ${hflip}, color jitter ${colorJitter}` };
  }
  // Measured on 3,000 Fashion-MNIST images at 32 px (bench/small-images.ts): in 5 epochs the shifts cost 4–5
  // points of top-1 on both tsimm and PyTorch; they pay off only in longer runs.
  const padding = given.padding ?? (epochs >= SHIFT_MIN_EPOCHS ? defaultPadding(size) : 0);
  const colorJitter = given.colorJitter ?? 0;
  return {
    crop: 'pad',
    padding,
    hflip,
    colorJitter,
    evalCropPct: 1,
    note: `small images (${size} px <= ${SMALL_IMAGE_MAX}): train transform = resize to ${size} px, ${padding ? `pad ${padding} px + random ${size} px crop` : `no random crop (${epochs} epochs < ${SHIFT_MIN_EPOCHS}; --padding N to shift)`}, hflip ${hflip}, color jitter ${colorJitter}; evaluation on the whole image (crop_pct 1); --scale MIN,MAX uses RandomResizedCrop instead`,
  };
}

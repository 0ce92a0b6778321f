/**
 * The small-image training recipe (CIFAR/MNIST style): resize the whole image to the training size, pad it by a
 * few pixels and take a random crop of the training size (a translation of at most `padding` px), then flip.
 * timm's RandomResizedCrop with scale (0.08, 1) keeps as little as 8 % of the area, which on a 28 px garment
 * leaves a few unrecognisable pixels; below SMALL_IMAGE_MAX px `tsimm train` uses this recipe by default.
 */
import { sampleFilter, trainTransform, type Rng, type TrainTransform, type TrainTransformConfig, type TrainTransformOptions } from './augment.js';
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

/** The small-image training transform: augment.ts's trainTransform with pad + random crop for RandomResizedCrop. */
export function smallImageTransform(config: TrainTransformConfig, options: SmallImageOptions = {}): TrainTransform {
  const given = options.padding;
  if (given !== undefined && !(Number.isInteger(given) && given >= 0)) throw new RangeError(`padding must be an integer >= 0, got ${given}`);
  return trainTransform(config, options, (img, rng, o) => padCrop(img, o.size[1], o.size[0], given ?? defaultPadding(Math.max(...o.size)), sampleFilter(o.interpolation, rng), rng));
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

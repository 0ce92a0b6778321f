/** timm's RandAugment policy (auto_augment.py): the op table, level → argument, the config string and the sampler. */
import { type PilFilter, type RgbImage } from './resize.js';
import { Rng } from '../util/rng.js';
import { type Fill, affinePil, rotatePil, autoContrast, equalize, invert, posterize, solarize, solarizeAdd, brightness, contrast, color, sharpness } from './pil-ops.js';

// ---------------------------------------------------------------------------------------------------------
// RandAugment (timm's auto_augment.py)

export type AugmentOpName =
  | 'AutoContrast'
  | 'Equalize'
  | 'Invert'
  | 'Rotate'
  | 'Posterize'
  | 'PosterizeIncreasing'
  | 'PosterizeOriginal'
  | 'Solarize'
  | 'SolarizeIncreasing'
  | 'SolarizeAdd'
  | 'Color'
  | 'ColorIncreasing'
  | 'Contrast'
  | 'ContrastIncreasing'
  | 'Brightness'
  | 'BrightnessIncreasing'
  | 'Sharpness'
  | 'SharpnessIncreasing'
  | 'ShearX'
  | 'ShearY'
  | 'TranslateXRel'
  | 'TranslateYRel';

/** timm's _RAND_TRANSFORMS: the op set of 'rand-m9-mstd0.5'. */
export const RAND_TRANSFORMS: readonly AugmentOpName[] = [
  'AutoContrast', 'Equalize', 'Invert', 'Rotate', 'Posterize', 'Solarize', 'SolarizeAdd', 'Color', 'Contrast',
  'Brightness', 'Sharpness', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel',
];

/** timm's _RAND_INCREASING_TRANSFORMS: the op set with an `inc` section ('rand-m9-mstd0.5-inc1'). */
export const RAND_INCREASING_TRANSFORMS: readonly AugmentOpName[] = [
  'AutoContrast', 'Equalize', 'Invert', 'Rotate', 'PosterizeIncreasing', 'SolarizeIncreasing', 'SolarizeAdd',
  'ColorIncreasing', 'ContrastIncreasing', 'BrightnessIncreasing', 'SharpnessIncreasing', 'ShearX', 'ShearY',
  'TranslateXRel', 'TranslateYRel',
];

/** timm's _RAND_CHOICE_WEIGHTS_0 ('w0'), for the default op set. */
const RAND_CHOICE_WEIGHTS_0: Partial<Record<AugmentOpName, number>> = {
  Rotate: 0.3, ShearX: 0.2, ShearY: 0.2, TranslateXRel: 0.1, TranslateYRel: 0.1, Color: 0.025, Sharpness: 0.025,
  AutoContrast: 0.025, Solarize: 0.005, SolarizeAdd: 0.005, Contrast: 0.005, Brightness: 0.005, Equalize: 0.005,
  Posterize: 0, Invert: 0,
};

const LEVEL_DENOM = 10;
const SIGNED = new Set<AugmentOpName>(['Rotate', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel', 'ColorIncreasing', 'ContrastIncreasing', 'BrightnessIncreasing', 'SharpnessIncreasing']);

/** Whether the op's argument takes a random sign (timm's _randomly_negate). */
export function isSignedOp(name: AugmentOpName): boolean {
  return SIGNED.has(name);
}

/**
 * timm's LEVEL_TO_ARG: the op's argument at `level` (a magnitude, already clipped), negated when `negate` for
 * the signed ops; undefined for ops without an argument. `translatePct` is timm's hparam (default 0.45).
 */
export function levelToArg(name: AugmentOpName, level: number, negate = false, translatePct = 0.45): number | undefined {
  const sign = (v: number) => (negate ? -v : v);
  switch (name) {
    case 'AutoContrast':
    case 'Equalize':
    case 'Invert':
      return undefined;
    case 'Rotate':
      return sign((level / LEVEL_DENOM) * 30);
    case 'Posterize':
      return Math.trunc((level / LEVEL_DENOM) * 4);
    case 'PosterizeIncreasing':
      return 4 - Math.trunc((level / LEVEL_DENOM) * 4);
    case 'PosterizeOriginal':
      return Math.trunc((level / LEVEL_DENOM) * 4) + 4;
    case 'Solarize':
      return Math.trunc((level / LEVEL_DENOM) * 256);
    case 'SolarizeIncreasing':
      return 256 - Math.trunc((level / LEVEL_DENOM) * 256);
    case 'SolarizeAdd':
      return Math.min(128, Math.trunc((level / LEVEL_DENOM) * 110));
    case 'Color':
    case 'Contrast':
    case 'Brightness':
    case 'Sharpness':
      return (level / LEVEL_DENOM) * 1.8 + 0.1;
    case 'ColorIncreasing':
    case 'ContrastIncreasing':
    case 'BrightnessIncreasing':
    case 'SharpnessIncreasing':
      return Math.max(0.1, 1.0 + sign((level / LEVEL_DENOM) * 0.9));
    case 'ShearX':
    case 'ShearY':
      return sign((level / LEVEL_DENOM) * 0.3);
    case 'TranslateXRel':
    case 'TranslateYRel':
      return sign((level / LEVEL_DENOM) * translatePct);
  }
}

export interface OpContext {
  /** Fill colour of the geometric ops (timm's hparams img_mean). */
  fill: Fill;
  /** Resampling of the geometric ops. */
  filter: PilFilter;
}

/** timm's NAME_TO_OP: apply `name` with its argument (from `levelToArg`). */
export function applyOp(name: AugmentOpName, img: RgbImage, arg: number | undefined, ctx: OpContext): RgbImage {
  const a = arg ?? 0;
  switch (name) {
    case 'AutoContrast':
      return autoContrast(img);
    case 'Equalize':
      return equalize(img);
    case 'Invert':
      return invert(img);
    case 'Rotate':
      return rotatePil(img, a, ctx.filter, ctx.fill);
    case 'Posterize':
    case 'PosterizeIncreasing':
    case 'PosterizeOriginal':
      return posterize(img, a);
    case 'Solarize':
    case 'SolarizeIncreasing':
      return solarize(img, a);
    case 'SolarizeAdd':
      return solarizeAdd(img, a);
    case 'Color':
    case 'ColorIncreasing':
      return color(img, a);
    case 'Contrast':
    case 'ContrastIncreasing':
      return contrast(img, a);
    case 'Brightness':
    case 'BrightnessIncreasing':
      return brightness(img, a);
    case 'Sharpness':
    case 'SharpnessIncreasing':
      return sharpness(img, a);
    case 'ShearX':
      return affinePil(img, [1, a, 0, 0, 1, 0], ctx.filter, ctx.fill);
    case 'ShearY':
      return affinePil(img, [1, 0, 0, a, 1, 0], ctx.filter, ctx.fill);
    case 'TranslateXRel':
      return affinePil(img, [1, 0, a * img.width, 0, 1, 0], ctx.filter, ctx.fill);
    case 'TranslateYRel':
      return affinePil(img, [1, 0, 0, 0, 1, a * img.height], ctx.filter, ctx.fill);
  }
}

const GEOMETRIC = new Set<AugmentOpName>(['Rotate', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel']);

export interface RandAugmentConfig {
  /** 'm': the magnitude (default 10). */
  magnitude: number;
  /** 'n': ops per image (default 2). */
  numLayers: number;
  /** 'mstd': std of the per-op magnitude noise; Infinity (mstd > 100) samples uniform(0, m). Default 0. */
  magnitudeStd: number;
  /** 'mmax': upper clip of the magnitude (default 10). */
  magnitudeMax: number;
  /** 'inc': the increasing op set. */
  increasing: boolean;
  /** 'p': per-op probability (default 0.5). */
  prob: number;
  /** 'w': choice-weight index (only 0 exists). */
  weightIdx?: number;
}

/**
 * Parse timm's RandAugment string: 'rand' then '-'-separated sections m, n, mstd, mmax, inc, p, w (e.g.
 * 'rand-m9-mstd0.5', 'rand-m7-n3-mstd0.5-inc1'). As in timm, a section is split at its first digit, sections
 * without a digit are ignored, and any `inc` value (even 'inc0') selects the increasing ops.
 */
export function parseRandAugment(config: string): RandAugmentConfig {
  const parts = config.split('-');
  if (parts[0] !== 'rand') throw new RangeError(`not a RandAugment config (must start with 'rand'): '${config}'`);
  const cfg: RandAugmentConfig = { magnitude: LEVEL_DENOM, numLayers: 2, magnitudeStd: 0, magnitudeMax: LEVEL_DENOM, increasing: false, prob: 0.5 };
  const int = (key: string, val: string): number => {
    if (!/^[0-9]+$/.test(val)) throw new RangeError(`RandAugment section '${key}${val}' needs an integer in '${config}'`);
    return Number(val);
  };
  const float = (key: string, val: string): number => {
    const v = Number(val);
    if (!Number.isFinite(v)) throw new RangeError(`RandAugment section '${key}${val}' needs a number in '${config}'`);
    return v;
  };
  for (const c of parts.slice(1)) {
    const at = c.search(/[0-9]/);
    if (at < 0) continue;
    const key = c.slice(0, at);
    const val = c.slice(at);
    if (key === 'mstd') {
      const v = float(key, val);
      cfg.magnitudeStd = v > 100 ? Infinity : v;
    } else if (key === 'mmax') cfg.magnitudeMax = int(key, val);
    else if (key === 'inc') cfg.increasing = true;
    else if (key === 'm') cfg.magnitude = int(key, val);
    else if (key === 'n') cfg.numLayers = int(key, val);
    else if (key === 'p') cfg.prob = float(key, val);
    else if (key === 'w') {
      cfg.weightIdx = int(key, val);
      if (cfg.weightIdx !== 0) throw new RangeError(`RandAugment weights 'w${val}': only w0 exists`);
    } else throw new RangeError(`unknown RandAugment section '${c}' in '${config}' (known: m, n, mstd, mmax, inc, p, w)`);
  }
  if (cfg.weightIdx !== undefined && cfg.increasing) throw new RangeError(`RandAugment weights (w0) apply to the default op set, not 'inc': '${config}'`);
  return cfg;
}

export interface RandAugmentOptions {
  /** Geometric fill; timm: round(255·mean). */
  fill: Fill;
  /** Resampling of the geometric ops; 'random' picks bilinear or bicubic per op, as timm does. */
  interpolation: PilFilter | 'random';
  translatePct?: number;
}

export type ImageAugment = (img: RgbImage, rng: Rng) => RgbImage;

/** timm's RandAugment: n ops drawn with replacement (without, weighted, for 'w0'), each applied with prob p. */
export function randAugment(config: string | RandAugmentConfig, opts: RandAugmentOptions): ImageAugment {
  const cfg = typeof config === 'string' ? parseRandAugment(config) : config;
  const ops = cfg.increasing ? RAND_INCREASING_TRANSFORMS : RAND_TRANSFORMS;
  const weights = cfg.weightIdx === undefined ? undefined : ops.map((n) => RAND_CHOICE_WEIGHTS_0[n] ?? 0);
  const upper = cfg.magnitudeMax || LEVEL_DENOM;
  const translatePct = opts.translatePct ?? 0.45;
  const pick = (rng: Rng): AugmentOpName[] => {
    if (!weights) return Array.from({ length: cfg.numLayers }, () => ops[rng.int(0, ops.length - 1)]!);
    // numpy's choice without replacement: weighted draws, renormalised after each.
    const w = weights.slice();
    const chosen: AugmentOpName[] = [];
    for (let k = 0; k < Math.min(cfg.numLayers, w.filter((v) => v > 0).length); k++) {
      const total = w.reduce((s, v) => s + v, 0);
      let r = rng.random() * total;
      let i = w.findIndex((v) => v > 0);
      for (let j = i; j < w.length; j++) {
        if (w[j]! <= 0) continue;
        i = j;
        if (r < w[j]!) break;
        r -= w[j]!;
      }
      chosen.push(ops[i]!);
      w[i] = 0;
    }
    return chosen;
  };
  return (img, rng) => {
    for (const name of pick(rng)) {
      if (cfg.prob < 1 && rng.random() > cfg.prob) continue;
      let m = cfg.magnitude;
      if (cfg.magnitudeStd === Infinity) m = rng.uniform(0, m);
      else if (cfg.magnitudeStd > 0) m = rng.normal(m, cfg.magnitudeStd);
      m = Math.max(0, Math.min(m, upper));
      const negate = SIGNED.has(name) ? rng.random() > 0.5 : false;
      const arg = levelToArg(name, m, negate, translatePct);
      const filter: PilFilter = GEOMETRIC.has(name) && opts.interpolation === 'random' ? (rng.random() < 0.5 ? 'bilinear' : 'bicubic') : opts.interpolation === 'random' ? 'bilinear' : opts.interpolation;
      img = applyOp(name, img, arg, { fill: opts.fill, filter });
    }
    return img;
  };
}

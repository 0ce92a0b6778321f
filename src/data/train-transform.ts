/**
 * The training transform as a loader module (see ./loader.ts): timm's train pipeline from ./augment.ts (or, with
 * `crop: 'pad'`, the small-image recipe of ./small-image.ts), with the
 * sample's randomness drawn from (seed, epoch, sample index), so any worker, order or resumed run gives the same
 * tensor. With `channels: 1` (a model built with inChans 1) the augmented image becomes PIL's 'L' luma.
 */
import { deriveRng, randomErasing, trainTransform, type TrainTransformOptions } from './augment.js';
import type { SampleTransform } from './loader.js';
import type { PilFilter } from './resize.js';
import { smallImageTransform } from './small-image.js';

export interface TrainTransformModuleConfig extends TrainTransformOptions {
  seed: number;
  channels?: 1 | 3;
  size: [number, number];
  interpolation: PilFilter;
  mean: [number, number, number];
  std: [number, number, number];
  /** 'random-resized' (timm's RandomResizedCrop, default) or 'pad' (pad `padding` px + random crop). */
  crop?: 'random-resized' | 'pad';
  padding?: number;
}

export function makeTransform(c: TrainTransformModuleConfig): SampleTransform {
  const base = { inputSize: [3, ...c.size], interpolation: c.interpolation, mean: c.mean, std: c.std };
  const t = c.crop === 'pad' ? smallImageTransform(base, c) : trainTransform(base, c);
  if (c.channels !== 1) return (img, index, epoch) => t(img, deriveRng(c.seed, epoch, index));
  const f = Math.fround;
  const mean = f((c.mean[0] + c.mean[1] + c.mean[2]) / 3);
  const std = f((c.std[0] + c.std[1] + c.std[2]) / 3);
  const [h, w] = c.size;
  return (img, index, epoch) => {
    const rng = deriveRng(c.seed, epoch, index);
    const x = t.augment(img, rng);
    const out = new Float32Array(h * w);
    for (let i = 0; i < h * w; i++) {
      const v = (x.data[3 * i]! * 19595 + x.data[3 * i + 1]! * 38470 + x.data[3 * i + 2]! * 7471 + 0x8000) >>> 16;
      out[i] = f(f(f(v / 255) - mean) / std);
    }
    if (t.options.reprob > 0) randomErasing(out, 1, h, w, { probability: t.options.reprob, mode: t.options.remode, minCount: 1, maxCount: t.options.recount }, rng);
    return out;
  };
}

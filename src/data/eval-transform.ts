/**
 * The default loader transform (a module for ./loader.ts): the evaluation pipeline of `tsimm eval`
 * (resize, centre crop, normalize with the model's PreprocessConfig; ./transforms.ts). With `channels: 1`
 * (a model built with inChans 1) the cropped image is reduced to PIL's convert('L') luma, which for
 * replicated gray is the gray value itself, and normalized with `grayMean`/`grayStd` (default: the means of
 * the config's three values).
 */
import type { SampleTransform } from './loader.js';
import { normalize, transformImage, type PreprocessConfig } from './transforms.js';

export interface EvalTransformConfig {
  preprocess: PreprocessConfig;
  channels?: 1 | 3;
  grayMean?: number;
  grayStd?: number;
}

export function makeTransform(c: EvalTransformConfig): SampleTransform {
  const p = c.preprocess;
  if (c.channels !== 1) return (img) => normalize(transformImage(img, p), p);
  const f = Math.fround;
  const mean = f(c.grayMean ?? (p.mean[0] + p.mean[1] + p.mean[2]) / 3);
  const std = f(c.grayStd ?? (p.std[0] + p.std[1] + p.std[2]) / 3);
  const scale = f(1 / 255);
  return (img) => {
    const t = transformImage(img, p);
    const n = t.width * t.height;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v = (t.data[3 * i]! * 19595 + t.data[3 * i + 1]! * 38470 + t.data[3 * i + 2]! * 7471 + 0x8000) >>> 16;
      out[i] = p.backend === 'pil' ? f(f(f(v / 255) - mean) / std) : f(f(f(v * scale) - mean) / std);
    }
    return out;
  };
}

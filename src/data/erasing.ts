/** The tensor stage of timm's train transform: ToTensor + Normalize in float32, then RandomErasing. */
import { roundHalfEven } from '../math.js';
import { type RgbImage } from './resize.js';
import { Rng } from '../util/rng.js';
import { type CropBox } from './pil-ops.js';

// ---------------------------------------------------------------------------------------------------------
// Tensor stage: ToTensor + Normalize, RandomErasing

/** ToTensor + Normalize in float32 (torch's arithmetic): ((v / 255) − mean) / std, CHW. */
export function toNormalizedTensor(img: RgbImage, mean: readonly number[], std: readonly number[], out: Float32Array = new Float32Array(3 * img.width * img.height), offset = 0): Float32Array {
  const plane = img.width * img.height;
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]!);
    const s = f(std[c]!);
    const o = offset + c * plane;
    for (let i = 0; i < plane; i++) out[o + i] = f(f(f(img.data[3 * i + c]! / 255) - m) / s);
  }
  return out;
}

export type EraseMode = 'pixel' | 'rand' | 'const';

export interface RandomErasingOptions {
  /** Probability of erasing a sample (timm's re_prob). */
  probability: number;
  /** 'pixel': per-pixel N(0, 1); 'rand': one N(0, 1) colour per box; 'const': zeros. */
  mode?: EraseMode;
  minArea?: number;
  maxArea?: number;
  minAspect?: number;
  maxAspect?: number;
  minCount?: number;
  maxCount?: number;
}

/**
 * timm's RandomErasing on one normalized CHW tensor, in place: with `probability`, `count` boxes of area
 * uniform in [minArea, maxArea]·area/count and log-uniform aspect in [minAspect, 1/minAspect], up to 10
 * attempts each. Returns the boxes erased.
 */
export function randomErasing(x: Float32Array, channels: number, height: number, width: number, o: RandomErasingOptions, rng: Rng, offset = 0): CropBox[] {
  const boxes: CropBox[] = [];
  if (rng.random() > o.probability) return boxes;
  const mode = o.mode ?? 'const';
  const minArea = o.minArea ?? 0.02;
  const maxArea = o.maxArea ?? 1 / 3;
  const minAspect = o.minAspect ?? 0.3;
  const maxAspect = o.maxAspect ?? 1 / minAspect;
  const logAspect: [number, number] = [Math.log(minAspect), Math.log(maxAspect)];
  const minCount = o.minCount ?? 1;
  const maxCount = o.maxCount ?? minCount;
  const area = height * width;
  const count = minCount === maxCount ? minCount : rng.int(minCount, maxCount);
  const plane = height * width;
  const noise = new Float32Array(channels);
  for (let k = 0; k < count; k++) {
    for (let attempt = 0; attempt < 10; attempt++) {
      const targetArea = (rng.uniform(minArea, maxArea) * area) / count;
      const aspect = Math.exp(rng.uniform(logAspect[0], logAspect[1]));
      const h = roundHalfEven(Math.sqrt(targetArea * aspect));
      const w = roundHalfEven(Math.sqrt(targetArea / aspect));
      if (w < width && h < height) {
        const top = rng.int(0, height - h);
        const left = rng.int(0, width - w);
        if (mode === 'rand') rng.fillNormal(noise, 0, channels);
        for (let c = 0; c < channels; c++) {
          for (let y = top; y < top + h; y++) {
            const row = offset + c * plane + y * width + left;
            if (mode === 'pixel') rng.fillNormal(x, row, w);
            else x.fill(mode === 'rand' ? noise[c]! : 0, row, row + w);
          }
        }
        boxes.push({ top, left, height: h, width: w });
        break;
      }
    }
  }
  return boxes;
}

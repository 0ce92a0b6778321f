/**
 * timm's Mixup in batch mode: with probability `prob`, λ ~ Beta(α, α) (mixup) or, switching with `switchProb`,
 * a cutmix box whose area corrects λ; the partner of sample i is sample N−1−i (the flipped batch); targets become
 * λ·onehot(y) + (1 − λ)·onehot(flip(y)), with label smoothing folded in (off = ε/C, on = 1 − ε + off).
 */
import type { Rng } from '../util/rng.js';

export interface MixupOptions {
  mixupAlpha?: number;
  cutmixAlpha?: number;
  /** Probability that a batch is mixed at all (timm's mixup_prob, 1). */
  prob?: number;
  /** Probability of cutmix when both are on (timm's mixup_switch_prob, 0.5). */
  switchProb?: number;
  labelSmoothing?: number;
  numClasses: number;
}

export interface Mixed {
  /** The batch, mixed in place. */
  x: Float32Array;
  /** Soft targets [N, C]. */
  targets: Float32Array;
  lam: number;
  cutmix: boolean;
}

/** timm's rand_bbox + cutmix_bbox_and_lam (correct_lam): the box and λ = 1 − box area / image area. */
export function cutmixBox(h: number, w: number, lam: number, rng: Rng): { y0: number; y1: number; x0: number; x1: number; lam: number } {
  const ratio = Math.sqrt(1 - lam);
  const ch = Math.trunc(h * ratio);
  const cw = Math.trunc(w * ratio);
  const cy = rng.int(0, h - 1);
  const cx = rng.int(0, w - 1);
  const clip = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  const y0 = clip(cy - (ch >> 1), h);
  const y1 = clip(cy + (ch >> 1), h);
  const x0 = clip(cx - (cw >> 1), w);
  const x1 = clip(cx + (cw >> 1), w);
  return { y0, y1, x0, x1, lam: 1 - ((y1 - y0) * (x1 - x0)) / (h * w) };
}

export function mixupTargets(targets: ArrayLike<number>, numClasses: number, lam: number, smoothing: number): Float32Array {
  const n = targets.length;
  const out = new Float32Array(n * numClasses).fill(smoothing / numClasses);
  for (let i = 0; i < n; i++) {
    // on − off = 1 − ε of the mass goes to the sample's class (λ) and its partner's (1 − λ).
    out[i * numClasses + targets[i]!]! += (1 - smoothing) * lam;
    out[i * numClasses + targets[n - 1 - i]!]! += (1 - smoothing) * (1 - lam);
  }
  return out;
}

/** Mix an NCHW batch in place and return its soft targets. */
export function mixBatch(x: Float32Array, shape: number[], targets: ArrayLike<number>, o: MixupOptions, rng: Rng): Mixed {
  const [n, c, h, w] = shape as [number, number, number, number];
  const ma = o.mixupAlpha ?? 0;
  const ca = o.cutmixAlpha ?? 0;
  let lam = 1;
  let cutmix = false;
  if ((ma > 0 || ca > 0) && rng.next() < (o.prob ?? 1)) {
    if (ma > 0 && ca > 0) cutmix = rng.next() < (o.switchProb ?? 0.5);
    else cutmix = ca > 0;
    const a = cutmix ? ca : ma;
    lam = rng.beta(a, a);
  }
  const plane = h * w;
  const per = c * plane;
  if (lam !== 1) {
    if (cutmix) {
      const box = cutmixBox(h, w, lam, rng);
      lam = box.lam;
      // Rows are read from the original partner: copy the partner's box first (pairs i and N−1−i swap).
      const src = x.slice();
      for (let i = 0; i < n; i++) {
        const j = n - 1 - i;
        for (let k = 0; k < c; k++) {
          for (let yy = box.y0; yy < box.y1; yy++) {
            const at = i * per + k * plane + yy * w;
            const from = j * per + k * plane + yy * w;
            x.set(src.subarray(from + box.x0, from + box.x1), at + box.x0);
          }
        }
      }
    } else {
      const src = x.slice();
      for (let i = 0; i < n; i++) {
        const j = n - 1 - i;
        for (let k = 0; k < per; k++) x[i * per + k] = src[i * per + k]! * lam + src[j * per + k]! * (1 - lam);
      }
    }
  }
  return { x, targets: mixupTargets(targets, o.numClasses, lam, o.labelSmoothing ?? 0), lam, cutmix };
}

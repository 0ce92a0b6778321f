/** Small numeric helpers shared by the builders, the resize kernels and the scorers (no Node APIs). */

/** Python's round() and numpy's: half to even (JS Math.round rounds half up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i]! - max);
  for (let i = 0; i < out.length; i++) out[i]! /= sum;
  return out;
}

/** Indices of the k largest values, largest first (ties: lower index first). */
export function topk(values: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((a, b) => values[b]! - values[a]! || a - b)
    .slice(0, k);
}

/** Deterministic values in [-1, 1) (an LCG): benchmark and test inputs that are the same on every machine. */
export function uniformInput(shape: number[], seed = 12345): { shape: number[]; data: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (s / 2 ** 32) * 2 - 1;
  }
  return { shape, data };
}

/** Two [batch, classes] logit tensors: the largest difference, relative to the reference's largest value, and top-1 agreement. */
export function compareLogits(ref: ArrayLike<number>, y: ArrayLike<number>, batch: number): { rel: number; maxAbs: number; maxRef: number; top1Agree: number } {
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(y[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  const classes = ref.length / batch;
  const argmax = (a: ArrayLike<number>, b: number) => {
    let k = 0;
    for (let c = 1; c < classes; c++) if (a[b * classes + c]! > a[b * classes + k]!) k = c;
    return k;
  };
  let top1Agree = 0;
  for (let b = 0; b < batch; b++) if (argmax(ref, b) === argmax(y, b)) top1Agree++;
  return { rel: maxAbs / (maxRef || 1), maxAbs, maxRef, top1Agree };
}

/** Top-1 / top-5 hits over rows of logits (timm's validate.py accuracy), in percent. */
export class Accuracy {
  count = 0;
  top1Hits = 0;
  top5Hits = 0;

  add(row: ArrayLike<number>, target: number): void {
    const best = topk(row, Math.min(5, row.length));
    if (best[0] === target) this.top1Hits++;
    if (best.includes(target)) this.top5Hits++;
    this.count++;
  }

  get top1(): number {
    return this.count ? (100 * this.top1Hits) / this.count : NaN;
  }

  get top5(): number {
    return this.count ? (100 * this.top5Hits) / this.count : NaN;
  }
}

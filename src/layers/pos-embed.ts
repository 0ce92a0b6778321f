/**
 * Position-embedding resampling for a ViT loaded at another grid: timm's `resample_abs_pos_embed` (prefix
 * tokens kept, the grid part resized as an image with PyTorch's `F.interpolate(mode='bicubic',
 * align_corners=False)`), written out so a checkpoint loads without PyTorch. Both of PyTorch's kernels are here:
 * plain bicubic (a = −0.75, border-clamped taps) and the antialiased one (separable, a = −0.5, the support widened
 * by the scale when shrinking), which timm 0.9.16's checkpoint filter asks for (`antialias=True`).
 */
import type { HostTensor } from '../weights/tensor.js';

const cubic1 = (x: number, a: number) => ((a + 2) * x - (a + 3)) * x * x + 1; // |x| ≤ 1
const cubic2 = (x: number, a: number) => ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; // 1 < |x| < 2
const cubicFilter = (x: number, a: number) => {
  const t = Math.abs(x);
  return t < 1 ? cubic1(t, a) : t < 2 ? cubic2(t, a) : 0;
};

/** Per output index: the input indices and weights of one axis. */
type Taps = { idx: number[]; w: number[] }[];

/** PyTorch's upsample_bicubic2d (align_corners False): 4 taps at floor(src) − 1 … + 2, clamped to the border. */
function plainTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const a = -0.75;
  return Array.from({ length: outSize }, (_, i) => {
    const src = scale * (i + 0.5) - 0.5;
    const i0 = Math.floor(src);
    const t = src - i0;
    const w = [cubic2(t + 1, a), cubic1(t, a), cubic1(1 - t, a), cubic2(2 - t, a)];
    const idx = [-1, 0, 1, 2].map((k) => Math.min(Math.max(i0 + k, 0), inSize - 1));
    return { idx, w };
  });
}

/** PyTorch's _upsample_bicubic2d_aa: PIL-style support, a = −0.5, weights normalised to sum 1. */
function aaTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const support = scale >= 1 ? 2 * scale : 2;
  const inv = scale >= 1 ? 1 / scale : 1;
  return Array.from({ length: outSize }, (_, i) => {
    const center = scale * (i + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const idx: number[] = [];
    const w: number[] = [];
    for (let j = lo; j < hi; j++) {
      idx.push(j);
      w.push(cubicFilter((j - center + 0.5) * inv, -0.5));
    }
    const total = w.reduce((s, v) => s + v, 0);
    return { idx, w: w.map((v) => (total ? v / total : 0)) };
  });
}

/** Resize a [H, W, C] grid (channels last, as a position embedding is stored) to [h, w, C]. */
export function resizeBicubic(src: Float32Array, H: number, W: number, C: number, h: number, w: number, antialias: boolean): Float32Array {
  const rows = antialias ? aaTaps(H, h) : plainTaps(H, h);
  const cols = antialias ? aaTaps(W, w) : plainTaps(W, w);
  // Separable: along W first (every input row), then along H.
  const tmp = new Float64Array(H * w * C);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < w; x++) {
      const { idx, w: wt } = cols[x]!;
      for (let k = 0; k < idx.length; k++) {
        const s = (y * W + idx[k]!) * C;
        const d = (y * w + x) * C;
        for (let c = 0; c < C; c++) tmp[d + c]! += wt[k]! * src[s + c]!;
      }
    }
  }
  const out = new Float32Array(h * w * C);
  for (let y = 0; y < h; y++) {
    const { idx, w: wt } = rows[y]!;
    for (let x = 0; x < w; x++) {
      const d = (y * w + x) * C;
      for (let c = 0; c < C; c++) {
        let v = 0;
        for (let k = 0; k < idx.length; k++) v += wt[k]! * tmp[(idx[k]! * w + x) * C + c]!;
        out[d + c] = v;
      }
    }
  }
  return out;
}

/**
 * timm's resample_abs_pos_embed: `[1, prefix + H·W, C]` → `[1, prefix + h·w, C]`, the old grid square
 * (√ of the grid tokens) and the prefix (class / distillation) tokens copied unchanged.
 */
export function resamplePosEmbed(t: HostTensor, grid: [number, number], prefix: number, antialias = true): HostTensor {
  const [, len, C] = t.shape as [number, number, number];
  const old = Math.round(Math.sqrt(len - prefix));
  if (old * old !== len - prefix) throw new Error(`pos_embed of ${len - prefix} grid tokens is not a square grid`);
  const [h, w] = grid;
  const out = new Float32Array((prefix + h * w) * C);
  out.set(t.data.subarray(0, prefix * C));
  out.set(resizeBicubic(t.data.subarray(prefix * C), old, old, C, h, w, antialias), prefix * C);
  return { shape: [1, prefix + h * w, C], data: out };
}

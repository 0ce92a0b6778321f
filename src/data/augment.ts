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
import { crop, resizePil, type PilFilter, type RgbImage } from './resize.js';

// ---------------------------------------------------------------------------------------------------------
// PRNG

/** The complete state of an `Rng`: four uint32 words (JSON-serialisable). */
export interface RngState {
  s: [number, number, number, number];
}

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) >>> 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * xoshiro128** with Python `random`-style helpers. Seeded from a number (any finite double: the low and
 * high 32 bits both count) or restored from a saved `RngState`.
 */
export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(seed: number | RngState = 0) {
    if (typeof seed === 'number') this.seed(seed);
    else this.setState(seed);
  }

  static fromState(state: RngState): Rng {
    return new Rng(state);
  }

  private seed(seed: number): void {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = splitmix32(lo ^ splitmix32(hi ^ 0x5bd1e995));
    this.a = x = splitmix32(x);
    this.b = x = splitmix32(x);
    this.c = x = splitmix32(x);
    this.d = x = splitmix32(x);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  getState(): RngState {
    return { s: [this.a, this.b, this.c, this.d] };
  }

  setState(state: RngState): void {
    const s = state.s;
    if (!Array.isArray(s) || s.length !== 4 || !s.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
      throw new RangeError('RNG state must be { s: [four uint32] }');
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new RangeError('RNG state must not be all zero');
    [this.a, this.b, this.c, this.d] = s;
  }

  clone(): Rng {
    return new Rng(this.getState());
  }

  /** The next uint32. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits (Python's random.random()). */
  random(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** random.uniform(lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** random.randint(lo, hi): an integer in [lo, hi], both inclusive, unbiased. */
  int(lo: number, hi: number): number {
    const n = hi - lo + 1;
    if (!(n >= 1) || !Number.isInteger(lo) || !Number.isInteger(hi)) throw new RangeError(`bad integer range [${lo}, ${hi}]`);
    if (n > 4294967296) return lo + Math.floor(this.random() * n);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return lo + (r % n);
    }
  }

  /** A standard normal sample (Box–Muller; the spare value is discarded so the state stays four words). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.random();
    const u2 = this.random();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Fill `out[offset .. offset+n)` with standard normals, two per Box–Muller pair, in float32. */
  fillNormal(out: Float32Array, offset: number, n: number): void {
    let i = 0;
    while (i < n) {
      const u1 = 1 - this.random();
      const u2 = this.random();
      const r = Math.sqrt(-2 * Math.log(u1));
      out[offset + i++] = r * Math.cos(2 * Math.PI * u2);
      if (i < n) out[offset + i++] = r * Math.sin(2 * Math.PI * u2);
    }
  }

  /** An element chosen uniformly. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('choice from an empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** A uniformly random permutation of 0..n-1 (torch.randperm). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i);
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * An independent stream for (seed, ...keys), e.g. `deriveRng(seed, epoch, sampleIndex)`: a sample's
 * augmentation then depends only on its keys, not on which worker ran it or in what order.
 */
export function deriveRng(seed: number, ...keys: number[]): Rng {
  let h = splitmix32((seed >>> 0) ^ splitmix32((Math.floor(seed / 4294967296) >>> 0) ^ 0x27d4eb2f));
  for (const k of keys) {
    h = splitmix32(h ^ (k >>> 0));
    h = splitmix32(h ^ (Math.floor(k / 4294967296) >>> 0) ^ 0x165667b1);
  }
  const s: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) s[i] = h = splitmix32(h + i);
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  return new Rng({ s });
}

// ---------------------------------------------------------------------------------------------------------
// Geometry: RandomResizedCrop, flips

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
  /** RandomResizedCrop only: set when all 10 attempts failed and the centre crop was taken. */
  fallback?: boolean;
}

/**
 * timm's RandomResizedCropAndInterpolation.get_params: up to 10 attempts at an area fraction uniform in
 * `scale` and a log-uniform aspect ratio in `ratio` (w/h), each side round()ed; else the centre crop clamped
 * to the ratio range.
 */
export function rrcParams(width: number, height: number, scale: [number, number], ratio: [number, number], rng: Rng): CropBox {
  const area = width * height;
  const logRatio: [number, number] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = rng.uniform(scale[0], scale[1]) * area;
    const aspect = Math.exp(rng.uniform(logRatio[0], logRatio[1]));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    // timm checks only the upper bounds; a zero side (tiny images) would make PIL fail, so retry instead.
    if (w <= width && h <= height && w > 0 && h > 0) {
      const top = rng.int(0, height - h);
      const left = rng.int(0, width - w);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w, fallback: true };
}

/** Crop then PIL-resize to (outWidth, outHeight), as torchvision's F.resized_crop on a PIL image. */
export function resizedCrop(img: RgbImage, box: CropBox, outWidth: number, outHeight: number, filter: PilFilter): RgbImage {
  const c = box.left === 0 && box.top === 0 && box.width === img.width && box.height === img.height ? img : crop(img, box.left, box.top, box.width, box.height);
  return resizePil(c, outWidth, outHeight, filter);
}

export function hflip(img: RgbImage): RgbImage {
  const { width, height } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + x * 3;
      const d = row + (width - 1 - x) * 3;
      out[d] = img.data[s]!;
      out[d + 1] = img.data[s + 1]!;
      out[d + 2] = img.data[s + 2]!;
    }
  }
  return { width, height, data: out };
}

export function vflip(img: RgbImage): RgbImage {
  const { width, height } = img;
  const out = new Uint8Array(img.data.length);
  const stride = width * 3;
  for (let y = 0; y < height; y++) out.set(img.data.subarray(y * stride, (y + 1) * stride), (height - 1 - y) * stride);
  return { width, height, data: out };
}

function rotate180(img: RgbImage): RgbImage {
  const n = img.width * img.height;
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < n; i++) {
    const s = i * 3;
    const d = (n - 1 - i) * 3;
    out[d] = img.data[s]!;
    out[d + 1] = img.data[s + 1]!;
    out[d + 2] = img.data[s + 2]!;
  }
  return { width: img.width, height: img.height, data: out };
}

/** PIL transpose ROTATE_90 (counter-clockwise) or ROTATE_270. */
function rotate90(img: RgbImage, ccw: boolean): RgbImage {
  const { width: w, height: h } = img;
  const out = new Uint8Array(img.data.length);
  // Output is h wide and w tall.
  for (let y = 0; y < w; y++) {
    for (let x = 0; x < h; x++) {
      const sx = ccw ? w - 1 - y : y;
      const sy = ccw ? x : h - 1 - x;
      const s = (sy * w + sx) * 3;
      const d = (y * h + x) * 3;
      out[d] = img.data[s]!;
      out[d + 1] = img.data[s + 1]!;
      out[d + 2] = img.data[s + 2]!;
    }
  }
  return { width: h, height: w, data: out };
}

// ---------------------------------------------------------------------------------------------------------
// PIL Image.transform(AFFINE) with BILINEAR / BICUBIC (Geometry.c's generic transform)

export type Fill = [number, number, number];

/**
 * `img.transform(img.size, Image.AFFINE, m, resample, fillcolor=fill)`: output pixel (x, y) samples the input
 * at (m0·(x+½) + m1·(y+½) + m2, m3·(x+½) + m4·(y+½) + m5); samples outside the image keep `fill`.
 */
export function affinePil(img: RgbImage, m: readonly number[], filter: PilFilter, fill: Fill): RgbImage {
  const { width: W, height: H, data } = img;
  const out = new Uint8Array(W * H * 3);
  const [a0, a1, a2, a3, a4, a5] = m as [number, number, number, number, number, number];
  const xc = (x: number) => (x < 0 ? 0 : x < W ? x : W - 1);
  const stride = W * 3;
  for (let y = 0; y < H; y++) {
    const yo = y + 0.5;
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      const xo = x + 0.5;
      let xin = a0 * xo + a1 * yo + a2;
      let yin = a3 * xo + a4 * yo + a5;
      if (xin < 0 || xin >= W || yin < 0 || yin >= H) {
        out[o] = fill[0];
        out[o + 1] = fill[1];
        out[o + 2] = fill[2];
        continue;
      }
      xin -= 0.5;
      yin -= 0.5;
      const ix = Math.floor(xin);
      const iy = Math.floor(yin);
      const dx = xin - ix;
      const dy = yin - iy;
      if (filter === 'bilinear') {
        const r0 = (iy < 0 ? 0 : iy < H ? iy : H - 1) * stride;
        const hasR1 = iy + 1 >= 0 && iy + 1 < H;
        const r1 = (iy + 1) * stride;
        const x0 = xc(ix) * 3;
        const x1 = xc(ix + 1) * 3;
        for (let b = 0; b < 3; b++) {
          const p0 = data[r0 + x0 + b]!;
          let v1 = p0 + (data[r0 + x1 + b]! - p0) * dx;
          let v2 = v1;
          if (hasR1) {
            const q0 = data[r1 + x0 + b]!;
            v2 = q0 + (data[r1 + x1 + b]! - q0) * dx;
          }
          v1 = v1 + (v2 - v1) * dy;
          out[o + b] = Math.trunc(v1);
        }
      } else {
        const bx = ix - 1;
        const by = iy - 1;
        const x0 = xc(bx) * 3;
        const x1 = xc(bx + 1) * 3;
        const x2 = xc(bx + 2) * 3;
        const x3 = xc(bx + 3) * 3;
        const rowY = (by < 0 ? 0 : by < H ? by : H - 1) * stride;
        for (let b = 0; b < 3; b++) {
          const row = (r: number) => cubic(data[r + x0 + b]!, data[r + x1 + b]!, data[r + x2 + b]!, data[r + x3 + b]!, dx);
          const v1 = row(rowY);
          const v2 = by + 1 >= 0 && by + 1 < H ? row((by + 1) * stride) : v1;
          const v3 = by + 2 >= 0 && by + 2 < H ? row((by + 2) * stride) : v2;
          const v4 = by + 3 >= 0 && by + 3 < H ? row((by + 3) * stride) : v3;
          const v = cubic(v1, v2, v3, v4, dy);
          out[o + b] = v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
        }
      }
    }
  }
  return { width: W, height: H, data: out };
}

/** Geometry.c's BICUBIC macro (a = −1 cubic convolution in Horner form). */
function cubic(v1: number, v2: number, v3: number, v4: number, d: number): number {
  const p1 = v2;
  const p2 = -v1 + v3;
  const p3 = 2 * (v1 - v2) + v3 - v4;
  const p4 = -v1 + v2 - v3 + v4;
  return p1 + d * (p2 + d * (p3 + d * p4));
}

/** Python's round(x, 15) (correctly rounded decimal, back to the nearest double). */
function round15(x: number): number {
  return Number(x.toFixed(15));
}

/** PIL `img.rotate(degrees, resample, fillcolor=fill)` (counter-clockwise, about the centre, same size). */
export function rotatePil(img: RgbImage, degrees: number, filter: PilFilter, fill: Fill): RgbImage {
  let angle = degrees % 360;
  if (angle < 0) angle += 360;
  if (angle === 0) return { width: img.width, height: img.height, data: img.data.slice() };
  if (angle === 180) return rotate180(img);
  if ((angle === 90 || angle === 270) && img.width === img.height) return rotate90(img, angle === 90);
  const cx = img.width / 2;
  const cy = img.height / 2;
  const rad = -(angle * (Math.PI / 180));
  const m = [round15(Math.cos(rad)), round15(Math.sin(rad)), 0, round15(-Math.sin(rad)), round15(Math.cos(rad)), 0];
  const [a, b, , d, e] = m as [number, number, number, number, number, number];
  m[2] = a * -cx + b * -cy + 0 + cx;
  m[5] = d * -cx + e * -cy + 0 + cy;
  return affinePil(img, m, filter, fill);
}

// ---------------------------------------------------------------------------------------------------------
// PIL ImageOps / ImageEnhance

function applyLut(img: RgbImage, lut: ArrayLike<number>, perChannel = false): RgbImage {
  const out = new Uint8Array(img.data.length);
  const d = img.data;
  if (perChannel) {
    for (let i = 0; i < d.length; i += 3) {
      out[i] = lut[d[i]!]!;
      out[i + 1] = lut[256 + d[i + 1]!]!;
      out[i + 2] = lut[512 + d[i + 2]!]!;
    }
  } else {
    for (let i = 0; i < d.length; i++) out[i] = lut[d[i]!]!;
  }
  return { width: img.width, height: img.height, data: out };
}

function histograms(img: RgbImage): Int32Array {
  const h = new Int32Array(768);
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) {
    h[d[i]!]!++;
    h[256 + d[i + 1]!]!++;
    h[512 + d[i + 2]!]!++;
  }
  return h;
}

/** ImageOps.autocontrast(img) (cutoff 0): each channel stretched from its [lo, hi] to [0, 255]. */
export function autoContrast(img: RgbImage): RgbImage {
  const hist = histograms(img);
  const lut = new Uint8Array(768);
  for (let c = 0; c < 3; c++) {
    const h = hist.subarray(c * 256, c * 256 + 256);
    let lo = 0;
    while (lo < 255 && !h[lo]) lo++;
    let hi = 255;
    while (hi > 0 && !h[hi]) hi--;
    for (let i = 0; i < 256; i++) {
      if (hi <= lo) lut[c * 256 + i] = i;
      else {
        const scale = 255 / (hi - lo);
        const offset = -lo * scale;
        const v = Math.trunc(i * scale + offset);
        lut[c * 256 + i] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return applyLut(img, lut, true);
}

/** ImageOps.equalize(img): each channel's cumulative histogram, PIL's integer step formula. */
export function equalize(img: RgbImage): RgbImage {
  const hist = histograms(img);
  const lut = new Uint8Array(768);
  for (let c = 0; c < 3; c++) {
    const h = hist.subarray(c * 256, c * 256 + 256);
    let total = 0;
    let last = 0;
    let nonzero = 0;
    for (let i = 0; i < 256; i++) {
      if (h[i]) {
        total += h[i]!;
        last = h[i]!;
        nonzero++;
      }
    }
    const step = nonzero <= 1 ? 0 : Math.floor((total - last) / 255);
    if (!step) {
      for (let i = 0; i < 256; i++) lut[c * 256 + i] = i;
      continue;
    }
    let n = Math.floor(step / 2);
    for (let i = 0; i < 256; i++) {
      // point() clips LUT entries to uint8 (the last used bin can reach 256).
      lut[c * 256 + i] = Math.min(255, Math.floor(n / step));
      n += h[i]!;
    }
  }
  return applyLut(img, lut, true);
}

export function invert(img: RgbImage): RgbImage {
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = 255 - i;
  return applyLut(img, lut);
}

/** ImageOps.posterize(img, bits) (timm returns the image unchanged for bits ≥ 8). */
export function posterize(img: RgbImage, bits: number): RgbImage {
  if (bits >= 8) return { width: img.width, height: img.height, data: img.data.slice() };
  const mask = ~((1 << (8 - bits)) - 1) & 0xff;
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = i & mask;
  return applyLut(img, lut);
}

/** ImageOps.solarize(img, threshold): values ≥ threshold inverted. */
export function solarize(img: RgbImage, threshold: number): RgbImage {
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = i < threshold ? i : 255 - i;
  return applyLut(img, lut);
}

/** timm's solarize_add: values below `threshold` get `add`, capped at 255. */
export function solarizeAdd(img: RgbImage, add: number, threshold = 128): RgbImage {
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = i < threshold ? Math.min(255, i + add) : i;
  return applyLut(img, lut);
}

/**
 * Image.blend(degenerate, img, factor) as ImagingBlend computes it: alpha in float32,
 * in1 + alpha·(in2 − in1) in float32, truncated (clipped to [0, 255] when extrapolating).
 */
function blendPil(degenerate: Uint8Array | number, img: RgbImage, factor: number): RgbImage {
  const f = Math.fround;
  const alpha = f(factor);
  const d = img.data;
  const out = new Uint8Array(d.length);
  const interp = alpha >= 0 && alpha <= 1;
  for (let i = 0; i < d.length; i++) {
    const a = typeof degenerate === 'number' ? degenerate : degenerate[i]!;
    const v = f(a + f(alpha * (d[i]! - a)));
    out[i] = interp ? Math.trunc(v) : v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
  }
  return { width: img.width, height: img.height, data: out };
}

/** PIL's RGB → L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16. */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** ImageEnhance.Brightness(img).enhance(factor). */
export function brightness(img: RgbImage, factor: number): RgbImage {
  return blendPil(0, img, factor);
}

/** ImageEnhance.Contrast(img).enhance(factor): blend with the mean grey int(mean(L) + 0.5). */
export function contrast(img: RgbImage, factor: number): RgbImage {
  const d = img.data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 3) sum += luma(d[i]!, d[i + 1]!, d[i + 2]!);
  const mean = Math.trunc(sum / (d.length / 3) + 0.5);
  return blendPil(mean, img, factor);
}

/** ImageEnhance.Color(img).enhance(factor): blend with the greyscale image (saturation). */
export function color(img: RgbImage, factor: number): RgbImage {
  const d = img.data;
  const grey = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i += 3) grey[i] = grey[i + 1] = grey[i + 2] = luma(d[i]!, d[i + 1]!, d[i + 2]!);
  return blendPil(grey, img, factor);
}

/** img.filter(ImageFilter.SMOOTH): the 3×3 kernel (1 1 1; 1 5 1; 1 1 1)/13 in float32, borders copied. */
function smooth(img: RgbImage): Uint8Array {
  const { width: W, height: H, data } = img;
  const out = data.slice();
  if (W < 3 || H < 3) return out;
  const f = Math.fround;
  const k1 = f(1 / 13);
  const k5 = f(5 / 13);
  const stride = W * 3;
  for (let y = 1; y < H - 1; y++) {
    const rm = (y - 1) * stride;
    const r0 = y * stride;
    const rp = (y + 1) * stride;
    for (let x = 1; x < W - 1; x++) {
      for (let b = 0; b < 3; b++) {
        const i = x * 3 + b;
        // ImagingFilter3x3: offset + ½, then rows y+1, y, y−1, each row's three taps summed left to right.
        let ss = f(0.5);
        ss = f(ss + f(f(f(data[rp + i - 3]! * k1) + f(data[rp + i]! * k1)) + f(data[rp + i + 3]! * k1)));
        ss = f(ss + f(f(f(data[r0 + i - 3]! * k1) + f(data[r0 + i]! * k5)) + f(data[r0 + i + 3]! * k1)));
        ss = f(ss + f(f(f(data[rm + i - 3]! * k1) + f(data[rm + i]! * k1)) + f(data[rm + i + 3]! * k1)));
        out[r0 + i] = ss <= 0 ? 0 : ss >= 255 ? 255 : Math.trunc(ss);
      }
    }
  }
  return out;
}

/** ImageEnhance.Sharpness(img).enhance(factor): blend with the SMOOTH-filtered image. */
export function sharpness(img: RgbImage, factor: number): RgbImage {
  return blendPil(smooth(img), img, factor);
}

// ---------------------------------------------------------------------------------------------------------
// ColorJitter (torchvision, as timm uses it: brightness/contrast/saturation in random order)

export interface ColorJitterParams {
  brightness: number;
  contrast: number;
  saturation: number;
}

/**
 * torchvision ColorJitter(b, c, s) on a PIL image: factors uniform in [max(0, 1 − v), 1 + v] (float32, as
 * torch samples them), applied in a random order (hue 0 is never applied).
 */
export function colorJitter(img: RgbImage, p: ColorJitterParams, rng: Rng): RgbImage {
  const order = rng.permutation(4);
  const factor = (v: number) => (v > 0 ? Math.fround(rng.uniform(Math.max(0, 1 - v), 1 + v)) : undefined);
  const b = factor(p.brightness);
  const c = factor(p.contrast);
  const s = factor(p.saturation);
  for (const fn of order) {
    if (fn === 0 && b !== undefined) img = brightness(img, b);
    else if (fn === 1 && c !== undefined) img = contrast(img, c);
    else if (fn === 2 && s !== undefined) img = color(img, s);
  }
  return img;
}

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

/**
 * timm's training transform (`create_transform(is_training=True)` with the given options) as one function
 * of (image, rng). Deterministic: the same image, options and RNG state give the same tensor.
 */
export function trainTransform(config: TrainTransformConfig, options: TrainTransformOptions = {}): TrainTransform {
  const o = resolveTrainOptions(config, options);
  const [outH, outW] = o.size;
  const ra = o.autoAugment ? randAugment(o.autoAugment, { fill: o.fill, interpolation: o.interpolation }) : undefined;
  const augment = (img: RgbImage, rng: Rng): RgbImage => {
    if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * 3) throw new RangeError(`bad RGB image ${img.width}x${img.height} with ${img.data.length} bytes`);
    const box = rrcParams(img.width, img.height, o.scale, o.ratio, rng);
    const filter: PilFilter = o.interpolation === 'random' ? (rng.random() < 0.5 ? 'bilinear' : 'bicubic') : o.interpolation;
    let x = resizedCrop(img, box, outW, outH, filter);
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

/**
 * Pillow 9.4's pixel operations as timm's augmentations call them, on uint8 HWC RGB images: RandomResizedCrop's
 * box and resample, flips, Image.transform(AFFINE) and Image.rotate (bilinear/bicubic, Geometry.c's arithmetic),
 * ImageOps LUTs, ImageEnhance's float32 blends with truncation, the SMOOTH filter, and torchvision's ColorJitter.
 */
import { roundHalfEven } from '../math.js';
import { crop, resizePil, type PilFilter, type RgbImage } from './resize.js';
import { Rng } from '../util/rng.js';

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

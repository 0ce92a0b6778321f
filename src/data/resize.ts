/**
 * Resize kernels that reproduce the references bit for bit on uint8 HWC RGB images.
 *
 * PIL (timm's eval transform): separable, horizontal pass first; the filter's support widens by the downscale
 * factor (antialiasing); per output pixel the window is [trunc(c − support + ½), trunc(c + support + ½)) with
 * c = (x + ½)·scale; weights are normalised, then quantised to 22-bit fixed point (round half away from zero);
 * each pass starts its accumulator at ½ and clips to uint8.
 *
 * OpenCV INTER_LINEAR (PaddleClas): half-pixel centres, no antialiasing, 11-bit fixed-point weights, the
 * vertical pass rounding (a·S0 + b·S1 + 2²¹) >> 22; an exact 2× downscale is INTER_AREA's 2×2 mean, as
 * cv::resize does.
 */

import { roundHalfEven } from '../math.js';
import { ensureMemory, simdPasses } from './resize-simd.js';

export interface RgbImage {
  width: number;
  height: number;
  /** HWC, 3 channels, uint8. */
  data: Uint8Array;
}

export type PilFilter = 'bilinear' | 'bicubic';

const FILTERS: Record<PilFilter, { support: number; f: (x: number) => number }> = {
  bilinear: {
    support: 1,
    f: (x) => {
      x = Math.abs(x);
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  /** First input index of each output's window. */
  start: Int32Array;
  /** Window length of each output. */
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output. */
  k: Int32Array;
  ksize: number;
}

function pilCoeffs(inSize: number, outSize: number, filter: PilFilter): Coeffs {
  const { support: base, f } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = base * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let x = 0; x < outSize; x++) {
    const center = (x + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let i = 0; i < xmax; i++) {
      w[i] = f((i + xmin - center + 0.5) * ss);
      ww += w[i]!;
    }
    for (let i = 0; i < xmax; i++) {
      const v = ww !== 0 ? w[i]! / ww : w[i]!;
      // Round half away from zero, as C's (int)(±0.5 + v·2^22).
      k[x * ksize + i] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    start[x] = xmin;
    count[x] = xmax;
  }
  return { start, count, k, ksize };
}

const clip8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * One horizontal pass over rows [y0, y1) of `src` (width `inW`) into `out` (width `c.start.length`). Sums are
 * int32 as in PIL's C (`Math.imul`, `| 0` keep V8 on integer arithmetic; no sum can overflow).
 */
function horizontalPass(src: Uint8Array, inW: number, y0: number, y1: number, c: Coeffs, out: Uint8Array): void {
  const outW = c.start.length;
  const { k, ksize, count } = c;
  const half = 1 << (PRECISION_BITS - 1);
  const start3 = new Int32Array(outW);
  for (let x = 0; x < outW; x++) start3[x] = c.start[x]! * 3;
  let o = 0;
  for (let y = y0; y < y1; y++) {
    const row = y * inW * 3;
    for (let x = 0; x < outW; x++) {
      let r = half;
      let g = half;
      let b = half;
      let p = row + start3[x]!;
      const kb = x * ksize;
      const n = count[x]!;
      for (let i = 0; i < n; i++) {
        const w = k[kb + i]!;
        r = (r + Math.imul(src[p]!, w)) | 0;
        g = (g + Math.imul(src[p + 1]!, w)) | 0;
        b = (b + Math.imul(src[p + 2]!, w)) | 0;
        p += 3;
      }
      out[o] = clip8(r >> PRECISION_BITS);
      out[o + 1] = clip8(g >> PRECISION_BITS);
      out[o + 2] = clip8(b >> PRECISION_BITS);
      o += 3;
    }
  }
}

/**
 * The vertical pass, a row at a time: each tap adds a whole source row (sequential reads) into an int32
 * accumulator row. The sum is PIL's, only accumulated in another order (integer addition: same result).
 */
function verticalPass(src: Uint8Array, stride: number, rowOffset: number, c: Coeffs, out: Uint8Array): void {
  const { k, ksize, count } = c;
  const outH = c.start.length;
  const half = 1 << (PRECISION_BITS - 1);
  const acc = new Int32Array(stride);
  for (let y = 0; y < outH; y++) {
    acc.fill(half);
    const kb = y * ksize;
    const n = count[y]!;
    for (let i = 0; i < n; i++) {
      const w = k[kb + i]!;
      const base = (c.start[y]! + i - rowOffset) * stride;
      for (let x = 0; x < stride; x++) acc[x] = (acc[x]! + Math.imul(src[base + x]!, w)) | 0;
    }
    const o = y * stride;
    for (let x = 0; x < stride; x++) {
      const v = acc[x]! >> PRECISION_BITS;
      out[o + x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}

/** resizePil's passes in WebAssembly SIMD (./resize-simd.ts): the same arithmetic, so the same bytes. */
function resizePilSimd(img: RgbImage, width: number, height: number, filter: PilFilter): RgbImage | undefined {
  const simd = simdPasses();
  if (!simd) return undefined;
  const needH = width !== img.width;
  const needV = height !== img.height;
  const ch = needH ? pilCoeffs(img.width, width, filter) : undefined;
  const cv = needV ? pilCoeffs(img.height, height, filter) : undefined;
  const y0 = cv ? cv.start[0]! : 0;
  const y1 = cv ? cv.start[height - 1]! + cv.count[height - 1]! : img.height;
  const align = (n: number) => (n + 15) & ~15;
  let at = 0;
  const take = (bytes: number) => {
    const a = at;
    at = align(at + bytes);
    return a;
  };
  const hStart = ch ? take(width * 4) : 0;
  const hCount = ch ? take(width * 4) : 0;
  const hK = ch ? take(width * ch.ksize * 4) : 0;
  const vStart = cv ? take(height * 4) : 0;
  const vCount = cv ? take(height * 4) : 0;
  const vK = cv ? take(height * cv.ksize * 4) : 0;
  const rowBytes = img.width * 3;
  const src = take((y1 - y0) * rowBytes + 4);
  const mid = needH && needV ? take(width * 3 * (y1 - y0) + 4) : src;
  const dst = take(width * 3 * height + 4);
  const mem = ensureMemory(simd, at);
  const i32 = new Int32Array(mem.buffer);
  mem.set(img.data.subarray(y0 * rowBytes, y1 * rowBytes), src);
  if (ch) {
    for (let x = 0; x < width; x++) i32[(hStart >> 2) + x] = ch.start[x]! * 3;
    i32.set(ch.count, hCount >> 2);
    i32.set(ch.k, hK >> 2);
    simd.hpass(src, rowBytes, y1 - y0, width, hStart, hCount, hK, ch.ksize, needV ? mid : dst);
  }
  if (cv) {
    for (let y = 0; y < height; y++) i32[(vStart >> 2) + y] = cv.start[y]! - y0;
    i32.set(cv.count, vCount >> 2);
    i32.set(cv.k, vK >> 2);
    simd.vpass(mid, width * 3, height, vStart, vCount, vK, cv.ksize, dst);
  }
  return { width, height, data: new Uint8Array(simd.memory.buffer, dst, width * height * 3).slice() };
}

/**
 * PIL Image.resize((width, height), BILINEAR|BICUBIC) of an RGB image: WebAssembly SIMD where available,
 * else (or with `simd: false`) the JavaScript passes; both give PIL's bytes.
 */
export function resizePil(img: RgbImage, width: number, height: number, filter: PilFilter, o: { simd?: boolean } = {}): RgbImage {
  const needH = width !== img.width;
  const needV = height !== img.height;
  if (!needH && !needV) return { width, height, data: img.data.slice() };
  const fast = o.simd === false ? undefined : resizePilSimd(img, width, height, filter);
  if (fast) return fast;
  const cv = needV ? pilCoeffs(img.height, height, filter) : undefined;
  if (!needV) {
    const out = new Uint8Array(width * height * 3);
    horizontalPass(img.data, img.width, 0, img.height, pilCoeffs(img.width, width, filter), out);
    return { width, height, data: out };
  }
  let src = img.data;
  let rowOffset = 0;
  if (needH) {
    // As PIL: the horizontal pass runs only on the rows some vertical window reads.
    const y0 = cv!.start[0]!;
    const last = height - 1;
    const y1 = cv!.start[last]! + cv!.count[last]!;
    src = new Uint8Array(width * (y1 - y0) * 3);
    horizontalPass(img.data, img.width, y0, y1, pilCoeffs(img.width, width, filter), src);
    rowOffset = y0;
  }
  const out = new Uint8Array(width * height * 3);
  verticalPass(src, width * 3, rowOffset, cv!, out);
  return { width, height, data: out };
}

const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;

function cv2Coeffs(inSize: number, outSize: number): { index: Int32Array; alpha: Int32Array } {
  // cv::resize: scale = 1 / (out / in) in double; the source coordinate and weights in float32.
  const scale = 1 / (outSize / inSize);
  const f = Math.fround;
  const index = new Int32Array(outSize);
  const alpha = new Int32Array(outSize * 2);
  for (let x = 0; x < outSize; x++) {
    let fx = f((x + 0.5) * scale - 0.5);
    let sx = Math.floor(fx);
    fx = f(fx - sx);
    if (sx < 0) {
      fx = 0;
      sx = 0;
    }
    if (sx >= inSize - 1) {
      fx = 0;
      sx = inSize - 1;
    }
    index[x] = sx;
    // saturate_cast<short>(v) rounds to nearest (cvRound: half to even).
    const a0 = roundHalfEven(f(f(1 - fx) * COEF_SCALE));
    alpha[2 * x] = a0;
    alpha[2 * x + 1] = COEF_SCALE - a0;
  }
  return { index, alpha };
}

/** cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR) of an RGB image. */
export function resizeCv2Linear(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === 2 * width && img.height === 2 * height) return areaHalve(img);
  const h = cv2Coeffs(img.width, width);
  const v = cv2Coeffs(img.height, height);
  const inStride = img.width * 3;
  // Horizontal pass over every input row a vertical tap needs, kept as ints scaled by 2^11.
  const rows = new Map<number, Int32Array>();
  const hrow = (y: number): Int32Array => {
    let r = rows.get(y);
    if (r) return r;
    r = new Int32Array(width * 3);
    const src = y * inStride;
    for (let x = 0; x < width; x++) {
      const sx = h.index[x]!;
      const a0 = h.alpha[2 * x]!;
      const a1 = h.alpha[2 * x + 1]!;
      const p0 = src + sx * 3;
      const p1 = src + Math.min(sx + 1, img.width - 1) * 3;
      for (let ch = 0; ch < 3; ch++) r[x * 3 + ch] = img.data[p0 + ch]! * a0 + img.data[p1 + ch]! * a1;
    }
    rows.set(y, r);
    return r;
  };
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = v.index[y]!;
    const b0 = v.alpha[2 * y]!;
    const b1 = v.alpha[2 * y + 1]!;
    const s0 = hrow(sy);
    const s1 = hrow(Math.min(sy + 1, img.height - 1));
    // OpenCV's vertical pass is vectorised (SSE2 baseline): 16 then 8 values at a time, rows pre-shifted by 4
    // to 16 bits, multiplied keeping the high 16 bits, then (sum + 2) >> 2. The row's tail takes the scalar
    // formula (a·S0 + b·S1 + 2²¹) >> 22. Both are reproduced so every pixel matches.
    const n = width * 3;
    let vec = 0;
    while (vec <= n - 16) vec += 16;
    while (vec < n - 8) vec += 8;
    const row = y * n;
    for (let i = 0; i < vec; i++) out[row + i] = clip8(((((s0[i]! >> 4) * b0) >> 16) + (((s1[i]! >> 4) * b1) >> 16) + 2) >> 2);
    for (let i = vec; i < n; i++) out[row + i] = clip8((s0[i]! * b0 + s1[i]! * b1 + (1 << (2 * COEF_BITS - 1))) >> (2 * COEF_BITS));
  }
  return { width, height, data: out };
}

/** INTER_AREA for an exact 2× downscale: the rounded mean of each 2×2 block. */
function areaHalve(img: RgbImage): RgbImage {
  const width = img.width >> 1;
  const height = img.height >> 1;
  const out = new Uint8Array(width * height * 3);
  const s = img.width * 3;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const p = 2 * y * s + 2 * x * 3 + c;
        out[(y * width + x) * 3 + c] = (img.data[p]! + img.data[p + 3]! + img.data[p + s]! + img.data[p + s + 3]! + 2) >> 2;
      }
    }
  }
  return { width, height, data: out };
}

/** Crop a [left, top, width, height] window; pixels outside the image are `fill` (timm's border mode). */
export function crop(img: RgbImage, left: number, top: number, width: number, height: number, fill = 0): RgbImage {
  const out = new Uint8Array(width * height * 3).fill(fill);
  for (let y = 0; y < height; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < width; x++) {
      const sx = left + x;
      if (sx < 0 || sx >= img.width) continue;
      const o = (y * width + x) * 3;
      const p = (sy * img.width + sx) * 3;
      out[o] = img.data[p]!;
      out[o + 1] = img.data[p + 1]!;
      out[o + 2] = img.data[p + 2]!;
    }
  }
  return { width, height, data: out };
}

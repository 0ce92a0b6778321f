/**
 * PIL's two resampling passes (./resize.ts) as WebAssembly SIMD: one i32x4 holds a pixel's R, G, B (and a
 * fourth lane that is ignored), so each filter tap is one widen + multiply + add for all three channels, the work
 * PIL's C does per channel. Same 22-bit fixed-point coefficients and int32 sums, so the same bytes. The module is
 * assembled here (no toolchain, no file); where WebAssembly SIMD is missing, `simdPasses()` is undefined and
 * ./resize.ts runs its JavaScript passes.
 */

const PRECISION_BITS = 22;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const I32 = 0x7f;
const V128 = 0x7b;
const get = (l: number) => [0x20, l];
const set = (l: number) => [0x21, l];
const c32 = (v: number) => [0x41, ...sleb(v)];
const simd = (op: number, ...rest: number[]) => [0xfd, ...uleb(op), ...rest];
const ADD = 0x6a;
const MUL = 0x6c;
const SHL = 0x74;
const GE_U = 0x4f;
const load32 = (offset = 0) => [0x28, 2, ...uleb(offset)];
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = 0x0b;
const br = (d: number) => [0x0c, d];
const brIf = (d: number) => [0x0d, d];
const inc = (l: number, by: number) => [...get(l), ...c32(by), ADD, ...set(l)];
/** widen the 4 bytes at the address on the stack to i32x4 */
const widen4 = [...simd(92, 0, 0), ...simd(137), ...simd(169)];
const splatW = simd(17);
const vmul = simd(181);
const vadd = simd(174);
/** clamp(acc >> 22, 0, 255) of the v128 on the stack */
const clampShift = [...c32(PRECISION_BITS), ...simd(172), ...simd(12, ...new Array(16).fill(0)), ...simd(184), ...simd(12, ...[255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0]), ...simd(182)];
const splatHalf = [...c32(1 << (PRECISION_BITS - 1)), ...splatW];

/**
 * hpass(src, srcRowBytes, rows, outW, start3, count, k, ksize, dst): params 0–8; locals y 9, x 10, i 11, p 12,
 * n 13, kp 14, o 15, rowp 16, acc 17 (v128).
 */
function hpassBody(): number[] {
  const [src, rowBytes, rows, outW, start3, count, k, ksize, dst] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [y, x, i, p, n, kp, o, rowp, acc] = [9, 10, 11, 12, 13, 14, 15, 16, 17];
  const body = [
    ...get(dst), ...set(o),
    ...c32(0), ...set(y),
    ...BLOCK, ...LOOP,
    ...get(y), ...get(rows), GE_U, ...brIf(1),
    ...get(src), ...get(y), ...get(rowBytes), MUL, ADD, ...set(rowp),
    ...c32(0), ...set(x),
    ...BLOCK, ...LOOP,
    ...get(x), ...get(outW), GE_U, ...brIf(1),
    ...get(rowp), ...get(start3), ...get(x), ...c32(2), SHL, ADD, ...load32(), ADD, ...set(p),
    ...get(count), ...get(x), ...c32(2), SHL, ADD, ...load32(), ...set(n),
    ...get(k), ...get(x), ...get(ksize), MUL, ...c32(2), SHL, ADD, ...set(kp),
    ...splatHalf, ...set(acc),
    ...c32(0), ...set(i),
    ...BLOCK, ...LOOP,
    ...get(i), ...get(n), GE_U, ...brIf(1),
    ...get(acc), ...get(p), ...widen4, ...get(kp), ...load32(), ...splatW, ...vmul, ...vadd, ...set(acc),
    ...inc(p, 3), ...inc(kp, 4), ...inc(i, 1),
    ...br(0), END, END,
    ...get(acc), ...clampShift, ...set(acc),
    ...get(o), ...get(acc), ...simd(27, 0), 0x3a, 0, 0,
    ...get(o), ...get(acc), ...simd(27, 1), 0x3a, 0, 1,
    ...get(o), ...get(acc), ...simd(27, 2), 0x3a, 0, 2,
    ...inc(o, 3), ...inc(x, 1),
    ...br(0), END, END,
    ...inc(y, 1),
    ...br(0), END, END,
  ];
  return [...uleb(2), ...uleb(8), I32, 1, V128, ...body, END];
}

/**
 * vpass(src, stride, outH, start, count, k, ksize, dst): start[y] is the first source row (relative to src);
 * 4 bytes per iteration (dst may be written up to 3 bytes past the end). params 0–7; locals y 8, x 9, i 10,
 * p 11, n 12, kp 13, o 14, s0 15, kb 16, acc 17 (v128).
 */
function vpassBody(): number[] {
  const [src, stride, outH, start, count, k, ksize, dst] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [y, x, i, p, n, kp, o, s0, kb, acc] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const body = [
    ...get(dst), ...set(o),
    ...c32(0), ...set(y),
    ...BLOCK, ...LOOP,
    ...get(y), ...get(outH), GE_U, ...brIf(1),
    ...get(src), ...get(start), ...get(y), ...c32(2), SHL, ADD, ...load32(), ...get(stride), MUL, ADD, ...set(s0),
    ...get(count), ...get(y), ...c32(2), SHL, ADD, ...load32(), ...set(n),
    ...get(k), ...get(y), ...get(ksize), MUL, ...c32(2), SHL, ADD, ...set(kb),
    ...c32(0), ...set(x),
    ...BLOCK, ...LOOP,
    ...get(x), ...get(stride), GE_U, ...brIf(1),
    ...splatHalf, ...set(acc),
    ...get(s0), ...get(x), ADD, ...set(p),
    ...get(kb), ...set(kp),
    ...c32(0), ...set(i),
    ...BLOCK, ...LOOP,
    ...get(i), ...get(n), GE_U, ...brIf(1),
    ...get(acc), ...get(p), ...widen4, ...get(kp), ...load32(), ...splatW, ...vmul, ...vadd, ...set(acc),
    ...get(p), ...get(stride), ADD, ...set(p), ...inc(kp, 4), ...inc(i, 1),
    ...br(0), END, END,
    // clamp, narrow to bytes, store 4
    ...get(o), ...get(acc), ...clampShift, ...set(acc), ...get(acc), ...get(acc), ...simd(133), ...simd(12, ...new Array(16).fill(0)), ...simd(102), ...simd(90, 0, 0, 0),
    ...inc(o, 4), ...inc(x, 4),
    ...br(0), END, END,
    // the row is `stride` bytes: step o back over the overshoot
    ...get(dst), ...get(y), ...c32(1), ADD, ...get(stride), MUL, ADD, ...set(o),
    ...inc(y, 1),
    ...br(0), END, END,
  ];
  return [...uleb(2), ...uleb(9), I32, 1, V128, ...body, END];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
  const types = [2, 0x60, 9, ...new Array(9).fill(I32), 0, 0x60, 8, ...new Array(8).fill(I32), 0];
  const imports = [1, ...name('env'), ...name('mem'), 0x02, 0x00, 0x01];
  const funcs = [2, 0, 1];
  const exports = [2, ...name('hpass'), 0x00, 0, ...name('vpass'), 0x00, 1];
  const bodies = [hpassBody(), vpassBody()];
  const code = [2, ...bodies.flatMap((b) => [...uleb(b.length), ...b])];
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...section(1, types), ...section(2, imports), ...section(3, funcs), ...section(7, exports), ...section(10, code)]);
}

export interface SimdPasses {
  memory: WebAssembly.Memory;
  hpass: (src: number, rowBytes: number, rows: number, outW: number, start3: number, count: number, k: number, ksize: number, dst: number) => void;
  vpass: (src: number, stride: number, outH: number, start: number, count: number, k: number, ksize: number, dst: number) => void;
}

let cached: SimdPasses | null | undefined;

/** The SIMD passes, or undefined where WebAssembly SIMD is unavailable (or TSIMM_RESIZE_SIMD=0). */
export function simdPasses(): SimdPasses | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  try {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
    if (env?.['TSIMM_RESIZE_SIMD'] === '0' || typeof WebAssembly === 'undefined') return undefined;
    const bytes = moduleBytes();
    if (!WebAssembly.validate(bytes)) return undefined;
    const memory = new WebAssembly.Memory({ initial: 1 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: memory } });
    const e = inst.exports as unknown as Omit<SimdPasses, 'memory'>;
    cached = { memory, hpass: e.hpass, vpass: e.vpass };
  } catch {
    cached = null;
  }
  return cached ?? undefined;
}

/** Bytes of wasm memory at least `bytes` long (grown in 64 KiB pages). */
export function ensureMemory(p: SimdPasses, bytes: number): Uint8Array {
  const have = p.memory.buffer.byteLength;
  if (bytes > have) p.memory.grow(Math.ceil((bytes - have) / 65536));
  return new Uint8Array(p.memory.buffer);
}

/**
 * IDX files: the format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, plain
 * or gzipped), as torchvision's `raw` folder and Debian's `dataset-fashion-mnist` package keep them.
 *
 * Layout: two zero bytes, a dtype code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
 * 0x0E float64), the number of dimensions, then each dimension as a big-endian uint32, then the values,
 * big-endian, row-major. The header is checked against what the file holds before anything is allocated from
 * it: a plain file's size must be exactly header + values; a gzipped one is inflated as a stream, so memory
 * grows with the bytes actually inflated and stops at what the header promised (a gzip bomb or a lying header
 * cannot make it allocate more).
 */
import { closeSync, createReadStream, existsSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip, gzipSync } from 'node:zlib';
import { InputError } from '../weights/tensor.js';

/** Where Debian's `dataset-fashion-mnist` installs the four `.gz` files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST's classes, in label order. */
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** MNIST's classes (torchvision's names are `0 - zero` …; the digit is what users expect printed). */
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** Largest IDX payload read unless the caller raises it (Fashion-MNIST's train images are 47 MB). */
export const DEFAULT_MAX_IDX_BYTES = 1 << 30;

/** A file that is not a usable IDX file; the message names the file, the problem and the fix. */
export class IdxError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'IdxError';
  }
}

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

const DTYPES: Record<number, { dtype: IdxDtype; size: number }> = {
  0x08: { dtype: 'uint8', size: 1 },
  0x09: { dtype: 'int8', size: 1 },
  0x0b: { dtype: 'int16', size: 2 },
  0x0c: { dtype: 'int32', size: 4 },
  0x0d: { dtype: 'float32', size: 4 },
  0x0e: { dtype: 'float64', size: 8 },
};
const CODES: Record<IdxDtype, number> = { uint8: 0x08, int8: 0x09, int16: 0x0b, int32: 0x0c, float32: 0x0d, float64: 0x0e };

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  file: string;
  dtype: IdxDtype;
  /** As stored in the header, except dims[0] when a `limit` cut the read short. */
  dims: number[];
  /** Row-major values in host order. */
  data: IdxData;
}

export interface IdxReadOptions {
  /** Read only the first `limit` items along the first dimension. */
  limit?: number;
  /** Refuse payloads over this many bytes (default 1 GiB). */
  maxBytes?: number;
}

interface Header {
  dtype: IdxDtype;
  size: number;
  dims: number[];
  headerBytes: number;
  /** Bytes of values the header promises. */
  payload: number;
}

const FIX = 'the file is not an IDX file or is corrupt: download it again (Fashion-MNIST: apt-get install dataset-fashion-mnist)';

/** Parse the header at the start of `b`; undefined while `b` is too short to hold it. */
function parseHeader(b: Uint8Array, file: string, maxBytes: number): Header | undefined {
  if (b.length < 4) return undefined;
  if (b[0] !== 0 || b[1] !== 0) throw new IdxError(`${file}: bad IDX magic 0x${hex(b.subarray(0, 4))} (expected 00 00 <dtype> <ndims>); ${FIX}`);
  const code = b[2]!;
  const t = DTYPES[code];
  if (!t) throw new IdxError(`${file}: unknown IDX dtype code 0x${code.toString(16).padStart(2, '0')} (expected 08, 09, 0B, 0C, 0D or 0E); ${FIX}`);
  const nd = b[3]!;
  if (nd === 0) throw new IdxError(`${file}: IDX header has 0 dimensions; ${FIX}`);
  const headerBytes = 4 + 4 * nd;
  if (b.length < headerBytes) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, headerBytes);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < nd; i++) {
    const d = v.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const payload = count * t.size;
  if (payload > maxBytes) {
    throw new IdxError(`${file}: IDX header claims dims [${dims.join(', ')}] of ${t.dtype} (${fmtBytes(payload)}), over the ${fmtBytes(maxBytes)} limit; ${FIX} (or raise maxBytes if the file is genuine)`);
  }
  return { dtype: t.dtype, size: t.size, dims, headerBytes, payload };
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${n} bytes`;
}

/** The first `items` along dim 0, as `dims` and a byte count. */
function cut(h: Header, limit?: number): { dims: number[]; bytes: number } {
  if (limit === undefined || limit >= h.dims[0]!) return { dims: h.dims, bytes: h.payload };
  if (!(Number.isInteger(limit) && limit >= 0)) throw new IdxError(`limit must be a non-negative integer, got ${limit}`);
  const itemBytes = h.dims[0] ? h.payload / h.dims[0] : 0;
  return { dims: [limit, ...h.dims.slice(1)], bytes: limit * itemBytes };
}

/** Big-endian payload bytes → a typed array in host order (copied, aligned). */
function toTyped(dtype: IdxDtype, bytes: Uint8Array): IdxData {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'uint8':
      return bytes;
    case 'int8':
      return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    case 'int16':
      return Int16Array.from({ length: bytes.length / 2 }, (_, i) => v.getInt16(2 * i, false));
    case 'int32':
      return Int32Array.from({ length: bytes.length / 4 }, (_, i) => v.getInt32(4 * i, false));
    case 'float32':
      return Float32Array.from({ length: bytes.length / 4 }, (_, i) => v.getFloat32(4 * i, false));
    case 'float64':
      return Float64Array.from({ length: bytes.length / 8 }, (_, i) => v.getFloat64(8 * i, false));
  }
}

/** Parse an IDX file already in memory (not gzipped). */
export function parseIdx(bytes: Uint8Array, file = 'IDX data', o: IdxReadOptions = {}): IdxArray {
  const h = parseHeader(bytes, file, o.maxBytes ?? DEFAULT_MAX_IDX_BYTES);
  if (!h) throw new IdxError(`${file}: ${bytes.length} bytes, too short for an IDX header; ${FIX}`);
  const total = h.headerBytes + h.payload;
  if (bytes.length !== total) {
    throw new IdxError(`${file}: the IDX header promises dims [${h.dims.join(', ')}] of ${h.dtype} (${total} bytes) but the data holds ${bytes.length}: ${bytes.length < total ? 'truncated' : 'trailing bytes'}; ${FIX}`);
  }
  const { dims, bytes: n } = cut(h, o.limit);
  return { file, dtype: h.dtype, dims, data: toTyped(h.dtype, bytes.subarray(h.headerBytes, h.headerBytes + n)) };
}

function isGzip(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = new Uint8Array(2);
    return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

function statFile(file: string): number {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new IdxError(`${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}; give the folder holding the IDX files (Fashion-MNIST: apt-get install dataset-fashion-mnist puts them in ${FASHION_MNIST_DIR})`);
  }
  if (st.isDirectory()) throw new IdxError(`${file} is a directory, not an IDX file`);
  return st.size;
}

/** Plain file: the header and exactly the bytes needed are read; the size is checked first. */
function readPlain(file: string, size: number, o: IdxReadOptions): IdxArray {
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_IDX_BYTES;
  const fd = openSync(file, 'r');
  try {
    const head = new Uint8Array(Math.min(size, 4 + 4 * 255));
    readSync(fd, head, 0, head.length, 0);
    const h = parseHeader(head, file, maxBytes);
    if (!h) throw new IdxError(`${file}: ${size} bytes, too short for an IDX header; ${FIX}`);
    const total = h.headerBytes + h.payload;
    if (size !== total) {
      throw new IdxError(`${file}: the IDX header promises dims [${h.dims.join(', ')}] of ${h.dtype} (${total} bytes) but the file holds ${size}: ${size < total ? 'truncated' : 'trailing bytes'}; ${FIX}`);
    }
    const { dims, bytes } = cut(h, o.limit);
    const payload = new Uint8Array(bytes);
    let got = 0;
    while (got < bytes) {
      const n = readSync(fd, payload, got, bytes - got, h.headerBytes + got);
      if (n <= 0) throw new IdxError(`${file}: read stopped after ${got} of ${bytes} bytes (the file changed while being read?)`);
      got += n;
    }
    return { file, dtype: h.dtype, dims, data: toTyped(h.dtype, payload) };
  } finally {
    closeSync(fd);
  }
}

/** Gzipped file: inflate as a stream, stopping once the (limited) payload is in; memory follows real bytes. */
async function readGzip(file: string, o: IdxReadOptions): Promise<IdxArray> {
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_IDX_BYTES;
  const chunks: Buffer[] = [];
  let have = 0;
  let head: Header | undefined;
  let want = Infinity;
  let out: { dims: number[]; bytes: number } | undefined;
  const src = createReadStream(file);
  const gz = createGunzip();
  src.pipe(gz);
  try {
    for await (const chunk of gz as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      have += chunk.length;
      if (!head) {
        const b = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (chunks.length > 1) chunks.splice(0, chunks.length, b);
        head = parseHeader(b, file, maxBytes);
        if (head) {
          out = cut(head, o.limit);
          want = head.headerBytes + out.bytes;
        }
      }
      const full = head ? head.headerBytes + head.payload : Infinity;
      if (have > full) throw new IdxError(`${file}: inflates to more than the ${full} bytes its IDX header promises (dims [${head!.dims.join(', ')}] of ${head!.dtype}): trailing bytes; ${FIX}`);
      // A short read may stop early; a full read goes on to the end, so gzip's CRC and length are checked.
      if (have >= want && want < full) break;
    }
  } catch (e) {
    if (e instanceof IdxError) throw e;
    const msg = (e as Error).message.split('\n')[0];
    throw new IdxError(`${file}: gzip stream is corrupt or truncated (${msg}); ${FIX}`);
  } finally {
    src.destroy();
    gz.destroy();
  }
  if (!head) throw new IdxError(`${file}: inflates to ${have} bytes, too short for an IDX header; ${FIX}`);
  if (have < want) {
    throw new IdxError(`${file}: the IDX header promises dims [${head.dims.join(', ')}] of ${head.dtype} (${head.headerBytes + head.payload} bytes) but the file inflates to ${have}: truncated; ${FIX}`);
  }
  const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const payload = new Uint8Array(out!.bytes);
  payload.set(all.subarray(head.headerBytes, want));
  return { file, dtype: head.dtype, dims: out!.dims, data: toTyped(head.dtype, payload) };
}

/** Read an IDX file, plain or gzipped (detected by content, not by name). */
export async function readIdx(file: string, o: IdxReadOptions = {}): Promise<IdxArray> {
  const size = statFile(file);
  if (size >= 2 && isGzip(file)) return readGzip(file, o);
  return readPlain(file, size, o);
}

/** Write an IDX file (gzipped when the name ends in .gz): tests, and exporting slices. */
export function writeIdx(file: string, dtype: IdxDtype, dims: number[], data: ArrayLike<number>): void {
  writeFileSync(file, file.endsWith('.gz') ? gzipSync(encodeIdx(dtype, dims, data)) : encodeIdx(dtype, dims, data));
}

/** IDX bytes for `data` (big-endian values). */
export function encodeIdx(dtype: IdxDtype, dims: number[], data: ArrayLike<number>): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`dims [${dims.join(', ')}] hold ${count} values, got ${data.length}`);
  const size = { uint8: 1, int8: 1, int16: 2, int32: 4, float32: 4, float64: 8 }[dtype];
  const out = new Uint8Array(4 + 4 * dims.length + count * size);
  const v = new DataView(out.buffer);
  out[2] = CODES[dtype];
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  const o = 4 + 4 * dims.length;
  for (let i = 0; i < count; i++) {
    const x = data[i]!;
    if (dtype === 'uint8') v.setUint8(o + i, x);
    else if (dtype === 'int8') v.setInt8(o + i, x);
    else if (dtype === 'int16') v.setInt16(o + 2 * i, x, false);
    else if (dtype === 'int32') v.setInt32(o + 4 * i, x, false);
    else if (dtype === 'float32') v.setFloat32(o + 4 * i, x, false);
    else v.setFloat64(o + 8 * i, x, false);
  }
  return out;
}

export type IdxSplit = 'train' | 'test';

/**
 * The images and labels files of a split in `dir`, as torchvision and the original site name them
 * (`train-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`, also `train-images.idx3-ubyte`), looked for in
 * `dir`, `dir/raw`, `dir/FashionMNIST/raw` and `dir/MNIST/raw` (torchvision's roots).
 */
export function findIdxFiles(dir: string, split: IdxSplit = 'train'): { images: string; labels: string } {
  const prefix = split === 'train' ? 'train' : 't10k';
  const folders = [dir, join(dir, 'raw'), join(dir, 'FashionMNIST', 'raw'), join(dir, 'MNIST', 'raw')];
  const find = (kind: 'images' | 'labels', nd: number): string | undefined => {
    for (const f of folders) {
      for (const sep of ['-', '.']) {
        for (const ext of ['', '.gz']) {
          const p = join(f, `${prefix}-${kind}${sep}idx${nd}-ubyte${ext}`);
          if (existsSync(p)) return p;
        }
      }
    }
    return undefined;
  };
  const images = find('images', 3);
  const labels = find('labels', 1);
  if (!images || !labels) {
    const missing = [!images && `${prefix}-images-idx3-ubyte[.gz]`, !labels && `${prefix}-labels-idx1-ubyte[.gz]`].filter(Boolean).join(' and ');
    const hint = existsSync(dir) ? '' : ' (the folder does not exist)';
    throw new IdxError(`${dir}${hint}: no ${missing} in it or its raw/, FashionMNIST/raw/, MNIST/raw/ folders; for Fashion-MNIST run apt-get install dataset-fashion-mnist (files in ${FASHION_MNIST_DIR})`);
  }
  return { images, labels };
}

/** The Debian package's folder when it is installed, else undefined. */
export function fashionMnistDir(): string | undefined {
  try {
    findIdxFiles(FASHION_MNIST_DIR, 'train');
    return FASHION_MNIST_DIR;
  } catch {
    return undefined;
  }
}

export interface IdxPair {
  images: IdxArray;
  labels: IdxArray;
  /** N × H × W uint8. */
  count: number;
  height: number;
  width: number;
}

/** An images file (uint8, N×H×W) and its labels file (uint8, N), checked against each other. */
export async function readIdxPair(images: string, labels: string, o: IdxReadOptions = {}): Promise<IdxPair> {
  const [im, lb] = [await readIdx(images, o), await readIdx(labels, o)];
  if (im.dtype !== 'uint8' || im.dims.length !== 3) {
    throw new IdxError(`${images}: expected uint8 images [N, H, W], got ${im.dtype} [${im.dims.join(', ')}]; is this an images file (…-images-idx3-ubyte)?`);
  }
  if (lb.dims.length !== 1 || !['uint8', 'int8', 'int16', 'int32'].includes(lb.dtype)) {
    throw new IdxError(`${labels}: expected integer labels [N], got ${lb.dtype} [${lb.dims.join(', ')}]; is this a labels file (…-labels-idx1-ubyte)?`);
  }
  if (im.dims[0] !== lb.dims[0]) {
    throw new IdxError(`${images} holds ${im.dims[0]} images but ${labels} holds ${lb.dims[0]} labels; the two files belong to different splits or one is cut short`);
  }
  return { images: im, labels: lb, count: im.dims[0]!, height: im.dims[1]!, width: im.dims[2]! };
}

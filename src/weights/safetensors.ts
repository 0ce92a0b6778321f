/**
 * safetensors reader/writer: 8-byte little-endian header length, JSON header, raw little-endian data.
 * Reads are positioned through a `ByteSource` (Node: a file, so files over 2 GiB work; the page: bytes); F32,
 * F16 and BF16 widen to float32. The header is validated against the size before any tensor is read. The
 * path-taking functions (readSafetensorsIndex, loadSafetensors, saveSafetensors) are in src/node/safetensors.ts.
 */
import type { ByteSource } from './source.js';
import { InputError, type HostTensor } from './tensor.js';

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsIndex {
  path: string;
  dataStart: number;
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

export function safetensorsIndex(src: ByteSource): SafetensorsIndex {
  const path = src.name;
  const size = src.size;
  const bad = (why: string) => new InputError(`${path} is not a valid safetensors file: ${why}; re-download or re-export it`);
  if (size < 8) throw bad(`only ${size} bytes`);
  const lenBuf = src.read(0, 8);
  const headerLen = Number(new DataView(lenBuf.buffer).getBigUint64(0, true));
  if (headerLen > size - 8 || headerLen > MAX_HEADER) throw bad(`header length ${headerLen} exceeds the file (${size} bytes)`);
  const headerBuf = src.read(8, headerLen);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(headerBuf)) as Record<string, unknown>;
  } catch {
    throw bad('header is not JSON');
  }
  const dataStart = 8 + headerLen;
  const dataSize = size - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bytes = DTYPE_BYTES[String(e.dtype)];
    if (!bytes) throw bad(`tensor ${name} has unknown dtype ${String(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`tensor ${name} has a bad shape`);
    if (!Array.isArray(e.data_offsets) || e.data_offsets.length !== 2) throw bad(`tensor ${name} has bad data_offsets`);
    const [begin, end] = e.data_offsets as number[];
    const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin! < 0 || end! < begin! || end! > dataSize) {
      throw bad(`tensor ${name} lies outside the file (offsets ${begin}..${end}, data is ${dataSize} bytes)`);
    }
    if (end! - begin! !== count * bytes) throw bad(`tensor ${name} has ${end! - begin!} bytes for shape [${(e.shape as number[]).join(', ')}] ${e.dtype}`);
    tensors.set(name, { dtype: String(e.dtype), shape: e.shape as number[], begin: begin!, end: end! });
  }
  return { path, dataStart, tensors, metadata };
}

/** Widen one stored tensor to float32. */
export function decodeFloat(dtype: string, raw: Uint8Array, name: string, owned = false): Float32Array {
  const count = raw.byteLength / DTYPE_BYTES[dtype]!;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  // Allocated where needed: the F32 fast path must not hold a second, unused tensor-sized buffer.
  let out = new Float32Array(0);
  if (dtype !== 'F32' || raw.byteOffset % 4 !== 0) out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      // x64/arm64 are little-endian, like the file: copy instead of decoding element by element.
      // A buffer read for this tensor alone is used as is (no second copy while loading).
      if (raw.byteOffset % 4 === 0) return owned ? new Float32Array(raw.buffer, raw.byteOffset, count) : new Float32Array(raw.buffer, raw.byteOffset, count).slice();
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    case 'F16': {
      const table = halfTable();
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)]!;
      return out;
    }
    case 'BF16': {
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    default:
      throw new InputError(`tensor ${name} is ${dtype}, not a floating-point type`);
  }
}

let HALF: Float32Array | undefined;
/** Every float16 bit pattern widened once (256 KiB): decoding is then one lookup per element. */
function halfTable(): Float32Array {
  if (!HALF) {
    HALF = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF[h] = halfToFloat(h);
  }
  return HALF;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Load float tensors (integer ones such as `num_batches_tracked` are skipped). */
export function decodeSafetensors(src: ByteSource, filter?: (name: string) => boolean): Map<string, HostTensor> {
  const index = safetensorsIndex(src);
  const out = new Map<string, HostTensor>();
  for (const [name, e] of index.tensors) {
    if (!['F32', 'F16', 'BF16', 'F64'].includes(e.dtype)) continue;
    if (filter && !filter(name)) continue;
    const raw = src.read(index.dataStart + e.begin, e.end - e.begin);
    out.set(name, { shape: e.shape, data: decodeFloat(e.dtype, raw, name, true) });
  }
  return out;
}

/** float32 tensors as a safetensors file's chunks (sorted by name, as the reference writer does). */
export function encodeSafetensors(tensors: Map<string, HostTensor>, metadata?: Record<string, string>): Uint8Array[] {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`tensor ${name}: shape [${t.shape.join(', ')}] does not hold ${t.data.length} values`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(json.byteLength + ((8 - (json.byteLength % 8)) % 8)).fill(0x20);
  padded.set(json);
  json = padded;
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  const chunks: Uint8Array[] = [len, json];
  for (const name of names) {
    const d = tensors.get(name)!.data;
    chunks.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return chunks;
}

/**
 * PyTorch checkpoints (.pth/.pt/.bin) without PyTorch: the zip format (torch ≥ 1.6; entries are stored, read
 * with positioned reads, so files over 2 GiB work) and the legacy format (pickles in a row, then raw
 * storages). Tensors are gathered by shape/stride/offset into contiguous float32; fp16/bf16/f64 widen.
 */
import { decodeFloat } from './safetensors.js';
import { PickleStream, storageFromPid, unpickleTorch, type StorageRef, type TensorRef } from './pickle.js';
import type { ByteSource } from './source.js';
import { InputError, type HostTensor } from './tensor.js';

const ELEMENT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const FLOATS = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Where a zip entry's bytes are in the file. */
interface Entry {
  offset: number;
  size: number;
}

/** The central directory of a zip file, as name → data location (stored entries only; zip64 too). Synchronous. */
function zipEntries(src: ByteSource): Map<string, Entry> {
  const path = src.name;
  const fileSize = src.size;
  const corrupt = (why: string) => new InputError(`${path} is not a readable zip (${why}); the file may be truncated — download it again`);
  const tailLen = Math.min(fileSize, 0xffff + 22);
  const tail = src.read(fileSize - tailLen, tailLen);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw corrupt('no end of central directory record');
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // zip64: a locator just before the record points at the zip64 end of central directory.
    if (eocd < 20 || tv.getUint32(eocd - 20, true) !== 0x07064b50) throw corrupt('zip64 locator missing');
    const at = Number(tv.getBigUint64(eocd - 12, true));
    if (at + 56 > fileSize) throw corrupt('zip64 record points outside the file');
    const z = new DataView(src.read(at, 56).buffer);
    if (z.getUint32(0, true) !== 0x06064b50) throw corrupt('bad zip64 end of central directory');
    count = Number(z.getBigUint64(32, true));
    cdSize = Number(z.getBigUint64(40, true));
    cdOffset = Number(z.getBigUint64(48, true));
  }
  if (cdOffset + cdSize > fileSize || count * 46 > cdSize) throw corrupt('central directory outside the file');
  const cd = src.read(cdOffset, cdSize);
  const v = new DataView(cd.buffer);
  const entries = new Map<string, Entry>();
  const decoder = new TextDecoder();
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cdSize || v.getUint32(p, true) !== 0x02014b50) throw corrupt(`central directory entry ${n} is damaged`);
    const method = v.getUint16(p + 10, true);
    let size = v.getUint32(p + 20, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    let local = v.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) throw corrupt(`central directory entry ${n} is damaged`);
    const name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64 extended information: the 64-bit values of the fields that read 0xffffffff, in order.
    for (let e = p + 46 + nameLen, end = e + extraLen; e + 4 <= end; ) {
      const id = v.getUint16(e, true);
      const len = v.getUint16(e + 2, true);
      if (id === 0x0001) {
        let f = e + 4;
        const next = () => {
          if (f + 8 > e + 4 + len) throw corrupt(`zip64 field of ${name} is short`);
          const x = Number(v.getBigUint64(f, true));
          f += 8;
          return x;
        };
        if (v.getUint32(p + 24, true) === 0xffffffff) next();
        if (size === 0xffffffff) size = next();
        if (local === 0xffffffff) local = next();
      }
      e += 4 + len;
    }
    p += 46 + nameLen + extraLen + commentLen;
    if (method !== 0) throw new InputError(`${path}: entry ${name} is compressed; torch.save writes stored entries — re-save the checkpoint with torch.save`);
    if (local + 30 > fileSize) throw new InputError(`${path}: entry ${name} points outside the file; the zip is corrupt or truncated`);
    const header = new DataView(src.read(local, 30).buffer);
    if (header.getUint32(0, true) !== 0x04034b50) throw new InputError(`${path}: entry ${name} has no local header; the zip is corrupt`);
    const offset = local + 30 + header.getUint16(26, true) + header.getUint16(28, true);
    if (offset + size > fileSize) throw new InputError(`${path}: entry ${name} points outside the file; the zip is corrupt or truncated`);
    entries.set(name, { offset, size });
  }
  return entries;
}

/** Copy a (possibly strided, offset) view of a storage into a contiguous float32 tensor. */
export function gather(t: TensorRef, storageBytes: Uint8Array, name: string): HostTensor {
  const dtype = t.storage.dtype;
  const bytes = ELEMENT_BYTES[dtype]!;
  const n = t.shape.reduce((a, b) => a * b, 1);
  const contiguous = t.stride.every((s, i) => s === t.shape.slice(i + 1).reduce((a, b) => a * b, 1) || t.shape[i] === 1);
  if (contiguous) {
    const start = t.offset * bytes;
    if (start + n * bytes > storageBytes.byteLength) throw new InputError(`tensor ${name} reads past its storage; the checkpoint is corrupt`);
    return { shape: t.shape, data: decodeFloat(dtype, storageBytes.slice(start, start + n * bytes), name) };
  }
  const all = decodeFloat(dtype, storageBytes, name);
  // A view never holds more elements than its storage in a checkpoint; a header saying so would size a huge
  // allocation from a few bytes of pickle.
  if (n > all.length) throw new InputError(`tensor ${name} has shape [${t.shape.join(', ')}] (${n} elements) over a storage of ${all.length}; the checkpoint is corrupt`);
  const out = new Float32Array(n);
  const idx = new Array<number>(t.shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = t.offset;
    for (let d = 0; d < idx.length; d++) src += idx[d]! * t.stride[d]!;
    if (src >= all.length) throw new InputError(`tensor ${name} reads past its storage; the checkpoint is corrupt`);
    out[i] = all[src]!;
    for (let d = idx.length - 1; d >= 0; d--) {
      if (++idx[d]! < t.shape[d]!) break;
      idx[d] = 0;
    }
  }
  return { shape: t.shape, data: out };
}

/** Find the state dict inside a checkpoint object: the dict itself, or `state_dict` / `model` / `module`. */
export function findStateDict(obj: unknown, what: string): Map<string, unknown> {
  const isTensorMap = (m: unknown): m is Map<string, unknown> =>
    m instanceof Map && [...m.values()].some((v) => (v as { kind?: string } | null)?.kind === 'tensor' || (v as { kind?: string } | null)?.kind === 'ndarray');
  if (isTensorMap(obj)) return obj;
  if (obj instanceof Map) {
    for (const key of ['state_dict', 'model', 'module', 'model_state', 'state_dict_ema', 'model_ema']) {
      if (isTensorMap(obj.get(key))) return obj.get(key) as Map<string, unknown>;
    }
  }
  throw new InputError(`${what} holds no state dict (looked for a dict of tensors, or one under state_dict/model/module)`);
}

/** Strip a wrapper prefix every key shares (DataParallel's `module.`). */
function stripCommonPrefix(m: Map<string, HostTensor>): Map<string, HostTensor> {
  const keys = [...m.keys()];
  if (keys.length && keys.every((k) => k.startsWith('module.'))) return new Map([...m].map(([k, v]) => [k.slice(7), v]));
  return m;
}

function collect(sd: Map<string, unknown>, storageBytes: (s: StorageRef) => Uint8Array, what: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const cache = new Map<string, Uint8Array>();
  for (const [name, v] of sd) {
    if (typeof name !== 'string') throw new InputError(`${what}: the state dict has a key that is not a string (${typeof name}); the file is corrupt`);
    const t = v as TensorRef;
    if (t?.kind !== 'tensor' || !FLOATS.has(t.storage.dtype)) continue; // num_batches_tracked and other integers
    let bytes = cache.get(t.storage.key);
    if (!bytes) {
      bytes = storageBytes(t.storage);
      cache.set(t.storage.key, bytes);
    }
    out.set(name, gather(t, bytes, `${what}:${name}`));
  }
  return stripCommonPrefix(out);
}

const ZIP_MAGIC = 0x04034b50;
/** The legacy format starts with pickle(0x1950a86a20f9469cfc6c, a 10-byte LONG1), which pickleparser cannot hold. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

export function decodeTorch(src: ByteSource): Map<string, HostTensor> {
  const path = src.name;
  const size = src.size;
  if (size < 16) throw new InputError(`${path} is ${size} bytes: not a PyTorch checkpoint (truncated download?)`);
  const head = src.read(0, 15);
  if (new DataView(head.buffer).getUint32(0, true) === ZIP_MAGIC) {
    const entries = zipEntries(src);
    const pkl = [...entries.keys()].find((k) => k === 'data.pkl' || k.endsWith('/data.pkl'));
    if (!pkl) throw new InputError(`${path} is a zip without data.pkl: not a torch.save checkpoint`);
    const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
    const e = entries.get(pkl)!;
    const obj = unpickleTorch(src.read(e.offset, e.size), path);
    return collect(findStateDict(obj, path), (s) => {
      const entry = entries.get(`${prefix}data/${s.key}`);
      if (!entry) throw new InputError(`${path}: storage ${s.key} is missing from the archive; the file is truncated or corrupt`);
      return src.read(entry.offset, entry.size);
    }, path);
  }
  if (LEGACY_MAGIC.every((b, i) => head[i] === b)) return loadLegacy(src);
  throw new InputError(`${path} is neither a torch zip nor a legacy torch file (first bytes ${[...head.slice(0, 4)].map((b) => b.toString(16)).join(' ')})`);
}

function loadLegacy(src: ByteSource): Map<string, HostTensor> {
  const path = src.name;
  if (src.size > 2 ** 31 - 1) throw new InputError(`${path}: legacy-format checkpoints over 2 GiB are not supported; re-save it with torch.save (zip format)`);
  const bytes = src.read(0, src.size);
  const stream = new PickleStream(bytes, path);
  stream.skip(LEGACY_MAGIC.length);
  const protocol = stream.next();
  if (protocol !== 1001) throw new InputError(`${path}: unsupported legacy protocol ${String(protocol)}`);
  stream.next(); // sys_info
  const obj = stream.next((pid) => storageFromPid(pid, path));
  const keys = stream.next() as string[];
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new InputError(`${path}: the storage key list is not a list of strings; the file is corrupt`);
  // Then, per key: int64 element count, then the raw elements.
  const storages = new Map<string, { start: number; count: number }>();
  let at = stream.position;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dtypes = new Map<string, string>();
  const visit = (v: unknown) => {
    const t = v as TensorRef;
    if (t?.kind === 'tensor') dtypes.set(t.storage.key, t.storage.dtype);
  };
  const sd = findStateDict(obj, path);
  sd.forEach(visit);
  for (const key of keys) {
    if (at + 8 > bytes.byteLength) throw new InputError(`${path} is truncated (storage ${key} missing)`);
    const count = Number(view.getBigInt64(at, true));
    if (count < 0 || !Number.isSafeInteger(count)) throw new InputError(`${path}: storage ${key} has a bad element count (${count}); the file is corrupt`);
    const elem = ELEMENT_BYTES[dtypes.get(key) ?? 'F32'] ?? 4;
    storages.set(key, { start: at + 8, count });
    at += 8 + count * elem;
    if (at > bytes.byteLength) throw new InputError(`${path} is truncated (storage ${key} ends past the file)`);
  }
  return collect(sd, (s) => {
    const st = storages.get(s.key);
    if (!st) throw new InputError(`${path}: storage ${s.key} is not in the file`);
    return bytes.subarray(st.start, st.start + st.count * ELEMENT_BYTES[s.dtype]!);
  }, path);
}

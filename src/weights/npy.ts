/** NumPy .npy v1/v2/v3 for float32 C-order arrays: what `tsimm infer` reads and writes. */
import { InputError, type HostTensor } from './tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function parseNpy(bytes: Uint8Array, what = 'input'): HostTensor {
  if (bytes.byteLength < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new InputError(`${what} is not a .npy file (no \\x93NUMPY magic); save it with numpy.save`);
  }
  const major = bytes[6]!;
  if (major !== 1 && bytes.byteLength < 12) throw new InputError(`${what} is truncated inside its .npy preamble`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > bytes.byteLength) throw new InputError(`${what} is truncated: its .npy header is ${headerLen} bytes, the file has ${bytes.byteLength - start} after the preamble`);
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new InputError(`${what}: unreadable .npy header ${printable(header)}`);
  if (descr === '|u1') {
    // uint8 arrays (images as the references store them) widen to float32.
    const shapeU8 = shapeOf(shapeText, what);
    const n = shapeU8.reduce((a, b) => a * b, 1);
    const start8 = start + headerLen;
    if (bytes.byteLength - start8 < n) throw new InputError(`${what} is truncated`);
    return { shape: shapeU8, data: Float32Array.from(bytes.subarray(start8, start8 + n)) };
  }
  if (descr !== '<f4') {
    throw new InputError(`${what} has dtype ${printable(descr).slice(1, -1)}; tsimm needs float32 ('<f4'): save it with numpy.save(path, x.astype(numpy.float32))`);
  }
  if (fortran === 'True') throw new InputError(`${what} is Fortran-ordered; save numpy.ascontiguousarray(x) instead`);
  const shape = shapeOf(shapeText, what);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  if (bytes.byteLength - dataStart < count * 4) {
    throw new InputError(`${what} is truncated: shape (${shape.join(', ')}) needs ${count * 4} data bytes, the file has ${bytes.byteLength - dataStart}`);
  }
  const data = new Float32Array(count);
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart, dataStart + count * 4));
  return { shape, data };
}

/** A header for an error message: one line, control bytes escaped, at most 120 characters. */
function printable(header: string): string {
  const t = JSON.stringify(header.trim());
  return t.length > 120 ? `${t.slice(0, 117)}...` : t;
}

function shapeOf(text: string, what = 'input'): number[] {
  const shape = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new InputError(`${what}: bad .npy shape (${printable(text)})`);
  return shape;
}

export function encodeNpy(t: HostTensor): Uint8Array[] {
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = new Uint8Array(10 + header.length);
  head.set(MAGIC);
  head[6] = 1;
  head[7] = 0;
  new DataView(head.buffer).setUint16(8, header.length, true);
  head.set(new TextEncoder().encode(header), 10);
  return [head, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)];
}

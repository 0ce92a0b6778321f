/** A minimal protobuf reader for the benches that look inside ONNX files (op counts of optimized graphs). */

/** Fields of one message, in order: [field number, bytes (length-delimited) or number (varint)]. */
export function protoFields(b: Uint8Array): [number, Uint8Array | number][] {
  const out: [number, Uint8Array | number][] = [];
  let i = 0;
  const varint = () => {
    let v = 0;
    let s = 0;
    let c: number;
    do {
      c = b[i++]!;
      v += (c & 0x7f) * 2 ** s;
      s += 7;
    } while (c & 0x80);
    return v;
  };
  while (i < b.length) {
    const key = varint();
    const wire = key & 7;
    if (wire === 0) out.push([Math.floor(key / 8), varint()]);
    else if (wire === 2) {
      const n = varint();
      out.push([Math.floor(key / 8), b.subarray(i, i + n)]);
      i += n;
    } else if (wire === 5) i += 4;
    else if (wire === 1) i += 8;
    else throw new Error(`wire type ${wire}`);
  }
  return out;
}

/**
 * A minimal protobuf encoder for the ONNX schema. Messages are lists of byte chunks with a known total length,
 * so multi-gigabyte initializers are referenced, never copied, until the model is written to a file.
 */

export class Message {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  private scratch: number[] = [];

  private flush(): void {
    if (this.scratch.length) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.length += this.scratch.length;
      this.scratch = [];
    }
  }

  private varint(v: number | bigint): void {
    let n = BigInt.asUintN(64, BigInt(v));
    if (n < 0x80n) {
      this.scratch.push(Number(n));
      return;
    }
    while (n >= 0x80n) {
      this.scratch.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.scratch.push(Number(n));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number | bigint): this {
    this.tag(field, 0);
    this.varint(v);
    return this;
  }

  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2);
    this.varint(data.byteLength);
    if (data.byteLength < 64) {
      this.scratch.push(...data);
    } else {
      this.flush();
      this.chunks.push(data);
      this.length += data.byteLength;
    }
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: Message): this {
    m.flush();
    this.tag(field, 2);
    this.varint(m.length);
    this.flush();
    this.chunks.push(...m.chunks);
    this.length += m.length;
    return this;
  }

  /** The finished chunk list (the message's bytes, in order). */
  finish(): Uint8Array[] {
    this.flush();
    return this.chunks;
  }

  toBytes(): Uint8Array {
    const chunks = this.finish();
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

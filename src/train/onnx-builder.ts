/**
 * A small ONNX graph builder for training graphs: plain ONNX nodes (opset 17), named values, constant
 * initializers, typed attributes (strings included, which ScatterElements' `reduction` needs). Kept apart from
 * the inference writer because training graphs take weights as inputs and have many more outputs.
 */
import { Message } from '../onnx/proto.js';
import { encodeNodes, OPSET, valueInfo, type AttrValue } from '../onnx/export.js';

export type { AttrValue };

export interface OnnxNode {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  /** Operator set domain (absent: ONNX's default); each used domain is imported at version 1. */
  domain?: string;
}

export interface OnnxConst {
  name: string;
  dims: number[];
  data: Float32Array | BigInt64Array;
}

export interface ValueDecl {
  name: string;
  shape: (number | string)[];
}

export class OnnxBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly consts: OnnxConst[] = [];
  readonly inputs: ValueDecl[] = [];
  readonly outputs: ValueDecl[] = [];
  private counter = 0;
  private readonly cache = new Map<string, string>();

  /** A fresh value name derived from `hint`. */
  fresh(hint: string): string {
    return `${hint}~${this.counter++}`;
  }

  /** Emit one node; returns its output names (fresh unless given). */
  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name = '', outputs: number | string[] = 1): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(`${name || op}:${op}`)) : outputs;
    this.nodes.push({ op, name, inputs, outputs: outs, attrs });
    return outs;
  }

  /** Single-output node. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name = ''): string {
    return this.node(op, inputs, attrs, name)[0]!;
  }

  /** Single-output node of another operator set (ONNX Runtime's `com.microsoft.nchwc`). */
  opIn(domain: string, op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name = '', outputs?: string[]): string {
    const out = this.node(op, inputs, attrs, name, outputs ?? 1)[0]!;
    this.nodes.at(-1)!.domain = domain;
    return out;
  }

  constant(name: string, dims: number[], data: Float32Array | BigInt64Array): string {
    this.consts.push({ name, dims, data });
    return name;
  }

  /** A shared int64 vector constant (shapes, axes, starts...). */
  ints(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.cache.get(key);
    if (!name) {
      name = this.constant(`const:${key}`, [values.length], BigInt64Array.from(values.map(BigInt)));
      this.cache.set(key, name);
    }
    return name;
  }

  /** A shared float32 scalar constant (rank 0, broadcasts everywhere). */
  scalar(v: number): string {
    const key = `f32:${v}`;
    let name = this.cache.get(key);
    if (!name) {
      name = this.constant(`const:${key}`, [], Float32Array.of(v));
      this.cache.set(key, name);
    }
    return name;
  }

  /** A memoised value computed once per graph (e.g. the batch size as a float). */
  once(key: string, make: () => string): string {
    let v = this.cache.get(key);
    if (!v) {
      v = make();
      this.cache.set(key, v);
    }
    return v;
  }

  input(name: string, shape: (number | string)[]): string {
    this.inputs.push({ name, shape });
    return name;
  }

  output(name: string, shape: (number | string)[]): string {
    this.outputs.push({ name, shape });
    return name;
  }

  /** Encode as an ONNX ModelProto (inline initializers). */
  encode(metadata: Record<string, string> = {}): Uint8Array {
    const g = new Message();
    encodeNodes(g, this.nodes);
    g.string(2, 'tsimm-train');
    for (const t of this.consts) {
      const m = new Message();
      for (const d of t.dims) m.int(1, d);
      m.int(2, t.data instanceof BigInt64Array ? 7 : 1);
      m.string(8, t.name);
      m.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      g.message(5, m);
    }
    for (const i of this.inputs) g.message(11, valueInfo(i.name, i.shape as (number | 'N')[]));
    for (const o of this.outputs) g.message(12, valueInfo(o.name, o.shape as (number | 'N')[]));
    const model = new Message().int(1, 8).string(2, 'tsimm').string(3, '0.1.0');
    model.message(7, g);
    model.message(8, new Message().string(1, '').int(2, OPSET));
    for (const d of new Set(this.nodes.flatMap((n) => (n.domain ? [n.domain] : [])))) model.message(8, new Message().string(1, d).int(2, 1));
    for (const [k, v] of Object.entries(metadata)) model.message(14, new Message().string(1, k).string(2, v));
    return model.toBytes();
  }
}

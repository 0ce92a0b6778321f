/**
 * Graph IR + weights → ONNX (opset 17, symbolic batch). BatchNorm is folded into the preceding conv by default;
 * `foldBatchNorm: false` keeps the graph one-to-one with the IR for debugging parity.
 * Initializers go inline below the 2 GB protobuf limit and to an external data file above it.
 */
import type { Graph, Node } from '../ir/graph.js';
import { Message } from './proto.js';
import { emitModern, loweringEmitter, MODERN_OPS } from './modern.js';

export const OPSET = 17;
const IR_VERSION = 8;
const FLOAT = 1;
const INT64 = 7;
const FLOAT16 = 10;
const INTEGER_TYPES: [Function, number][] = [
  [BigInt64Array, INT64],
  [Int8Array, 3],
  [Uint8Array, 2],
  [Int32Array, 6],
];
/** Above this many initializer bytes the model must use external data (protobuf caps a message at 2 GiB). */
export const INLINE_LIMIT = 1_800_000_000;

export type WeightMap = Map<string, Float32Array>;

export interface ExportOptions {
  foldBatchNorm?: boolean;
  /** Graph outputs to expose (default: all the graph declares, e.g. logits and features). */
  outputs?: string[];
  /** Store float weights as float16 (half the size; ONNX Runtime's x64 CPU EP computes them in fp32). */
  float16?: boolean;
  /** Key/value pairs stored in the model's metadata_props. */
  metadata?: Record<string, string>;
  /** Rewrite the lowered graph before encoding (int8 quantization). */
  transform?: (l: Lowered) => Lowered;
  /** Intermediate values to expose as extra outputs (calibration), by IR value name. */
  extraOutputs?: string[];
}

export interface Initializer {
  name: string;
  dims: number[];
  data: Float32Array | BigInt64Array | Int8Array | Uint8Array | Int32Array;
  /**
   * Set on folded conv weights: `data` is a getter that folds on each read and keeps nothing, so a writer
   * streaming initializers to a file holds one folded tensor at a time, not a second copy of the model.
   */
  lazy?: true;
}

export interface LoweredNode {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, number | number[]>;
}

/** The graph as ONNX nodes and initializers (BatchNorm folded), before encoding: what quantization rewrites. */
export interface Lowered {
  nodes: LoweredNode[];
  initializers: Initializer[];
}

/** Attributes that opset 13+ takes as int64 input tensors instead. */
const ATTR_AS_INPUT: Record<string, string> = { Split: 'split', Reshape: 'shape', ReduceSum: 'axes', Pad: 'pads' };

/** BatchNorm folded into the conv before it: per output channel, weight × scale and a new bias. */
function foldedConv(conv: Node, bn: Node, weights: WeightMap): { weight: () => Float32Array; bias: () => Float32Array } {
  const get = (name: string): Float32Array => {
    const w = weights.get(name);
    if (!w) throw new Error(`missing weight ${name}`);
    return w;
  };
  const scales = (): Float64Array => {
    const [gamma, , , variance] = bn.params.map(get) as [Float32Array, Float32Array, Float32Array, Float32Array];
    const eps = bn.attrs['epsilon'] as number;
    return Float64Array.from(gamma, (g, o) => g / Math.sqrt(variance[o]! + eps)); // float64, as before: bit-identical folds
  };
  return {
    weight: () => {
      const w = get(conv.params[0]!);
      const scale = scales();
      const per = w.length / scale.length;
      const weight = new Float32Array(w.length);
      for (let o = 0; o < scale.length; o++) for (let i = o * per; i < (o + 1) * per; i++) weight[i] = w[i]! * scale[o]!;
      return weight;
    },
    bias: () => {
      const convBias = conv.params[1] ? get(conv.params[1]) : undefined;
      const [, beta, mean] = bn.params.map(get) as [Float32Array, Float32Array, Float32Array, Float32Array];
      const scale = scales();
      return Float32Array.from(scale, (sc, o) => ((convBias ? convBias[o]! : 0) - mean[o]!) * sc + beta[o]!);
    },
  };
}

/** An initializer whose data is computed on each read (see Initializer.lazy). */
function lazyInitializer(name: string, dims: number[], make: () => Float32Array): Initializer {
  return {
    name,
    dims,
    lazy: true,
    get data() {
      return make();
    },
  };
}

export function lowerGraph(graph: Graph, weights: WeightMap, fold: boolean): Lowered {
  const consumers = new Map<string, number>();
  for (const n of graph.nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);

  const folded = new Map<Node, Node>(); // conv -> bn
  if (fold) {
    for (const n of graph.nodes) {
      if (n.op !== 'BatchNormalization') continue;
      const p = producer.get(n.inputs[0]!);
      if (p?.op === 'Conv' && consumers.get(p.outputs[0]!) === 1 && !graph.outputs.includes(p.outputs[0]!)) folded.set(p, n);
    }
  }
  const skipped = new Set(folded.values());
  const initializers: Initializer[] = [];
  const nodes: Lowered['nodes'] = [];
  const paramData = (name: string): Float32Array => {
    const w = weights.get(name);
    if (!w) throw new Error(`missing weight ${name}`);
    return w;
  };

  // Stochastic depth and dropout are training-only: here they are the identity, so their consumers read
  // their input directly (an Identity node only where the value is a graph output).
  const alias = new Map<string, string>();
  for (const node of graph.nodes) {
    if (skipped.has(node)) continue;
    const n = alias.size && node.inputs.some((i) => alias.has(i)) ? { ...node, inputs: node.inputs.map((i) => alias.get(i) ?? i) } : node;
    if (n.op === 'DropPath' || n.op === 'Dropout') {
      if (graph.outputs.includes(n.outputs[0]!)) nodes.push({ op: 'Identity', name: n.name, inputs: n.inputs, outputs: n.outputs, attrs: {} });
      else alias.set(n.outputs[0]!, n.inputs[0]!);
      continue;
    }
    const attrs: Record<string, number | number[]> = {};
    for (const [k, v] of Object.entries(n.attrs)) if (typeof v !== 'string') attrs[k] = v;
    let inputs = [...n.inputs];
    let outputs = n.outputs;
    const bn = folded.get(node);
    if (bn) {
      const { weight, bias } = foldedConv(n, bn, weights);
      const wName = `${n.name}.weight`;
      const bName = `${n.name}.bias`;
      initializers.push(lazyInitializer(wName, graph.params.get(n.params[0]!)!.shape, weight));
      initializers.push(lazyInitializer(bName, [graph.params.get(bn.params[0]!)!.shape[0]!], bias));
      inputs.push(wName, bName);
      outputs = bn.outputs;
    } else {
      for (const p of n.params) {
        initializers.push({ name: p, dims: graph.params.get(p)!.shape, data: paramData(p) });
        inputs.push(p);
      }
    }
    const asInput = ATTR_AS_INPUT[n.op];
    if (asInput) {
      const v = attrs[asInput] as number[];
      delete attrs[asInput];
      const name = `${outputs[0]}:${asInput}`;
      // ONNX Pad takes [begin..., end...] over all four axes.
      const values = n.op === 'Pad' ? [0, 0, v[0]!, v[1]!, 0, 0, v[2]!, v[3]!] : v;
      initializers.push({ name, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
      inputs = [...inputs, name];
    }
    if (MODERN_OPS.has(n.op)) {
      emitModern(loweringEmitter(nodes, initializers, outputs[0]!), n, inputs, outputs, (v) => graph.shape(v));
      continue;
    }
    if (n.op === 'SiLU') {
      // ONNX has no SiLU before opset 24: x * sigmoid(x), which ONNX Runtime fuses.
      const gate = `${outputs[0]}:gate`;
      nodes.push({ op: 'Sigmoid', name: `${n.name}:sigmoid`, inputs, outputs: [gate], attrs: {} });
      nodes.push({ op: 'Mul', name: n.name, inputs: [inputs[0]!, gate], outputs, attrs: {} });
      continue;
    }
    nodes.push({ op: n.op, name: n.name, inputs, outputs, attrs });
  }
  return { nodes, initializers };
}

/** fp16 graphs keep float32 inputs and outputs: Cast in after the input, Cast out before each output. */
function castAtBoundaries(graph: Graph, nodes: Lowered['nodes']): void {
  const renames = new Map<string, string>();
  for (const name of [...graph.inputs, ...graph.outputs]) renames.set(name, `${name}:fp16`);
  for (const n of nodes) {
    n.inputs = n.inputs.map((i) => renames.get(i) ?? i);
    n.outputs = n.outputs.map((o) => renames.get(o) ?? o);
  }
  for (const i of graph.inputs) nodes.unshift({ op: 'Cast', name: `${i}:cast`, inputs: [i], outputs: [`${i}:fp16`], attrs: { to: FLOAT16 } });
  for (const o of graph.outputs) nodes.push({ op: 'Cast', name: `${o}:cast`, inputs: [`${o}:fp16`], outputs: [o], attrs: { to: FLOAT } });
}

export function valueInfo(name: string, shape?: (number | 'N')[]): Message {
  const tensorType = new Message().int(1, FLOAT);
  if (shape) {
    const dims = new Message();
    for (const d of shape) dims.message(1, typeof d === 'number' ? new Message().int(1, d) : new Message().string(2, d));
    tensorType.message(2, dims);
  }
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/** Float-valued attributes (everything else numeric is an int). */
const FLOAT_ATTRS = new Set(['epsilon', 'alpha', 'beta', 'momentum']);

/** An attribute value: ints/floats by name (FLOAT_ATTRS), int lists, strings, or an explicit float. */
export type AttrValue = number | number[] | string | { float: number };

export function attribute(name: string, v: AttrValue): Message {
  const m = new Message().string(1, name);
  if (typeof v === 'string') return m.string(4, v).int(20, 3); // STRING
  if (typeof v === 'object' && !Array.isArray(v)) return m.float(2, v.float).int(20, 1);
  if (Array.isArray(v)) {
    for (const x of v) m.int(8, x);
    m.int(20, 7); // INTS
  } else if (Number.isInteger(v) && !FLOAT_ATTRS.has(name)) {
    m.int(3, v).int(20, 2); // INT
  } else {
    m.float(2, v).int(20, 1); // FLOAT
  }
  return m;
}

/** Append NodeProtos to a GraphProto. ONNX node names must be unique: module path + op, numbered when a module has several of one op. */
export function encodeNodes(g: Message, nodes: { op: string; name: string; inputs: string[]; outputs: string[]; attrs: Record<string, AttrValue>; domain?: string }[]): void {
  const used = new Map<string, number>();
  for (const n of nodes) {
    const m = new Message();
    for (const i of n.inputs) m.string(1, i);
    for (const o of n.outputs) m.string(2, o);
    const base = n.name ? `${n.name}:${n.op}` : n.op;
    const k = used.get(base) ?? 0;
    used.set(base, k + 1);
    m.string(3, k ? `${base}_${k}` : base).string(4, n.op);
    for (const [key, v] of Object.entries(n.attrs)) m.message(5, attribute(key, v));
    if (n.domain) m.string(7, n.domain);
    g.message(1, m);
  }
}

function toHalf(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i]!;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    let mant = x & 0x7fffff;
    if (((x >>> 23) & 0xff) === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
    } else if (exp >= 0x1f) {
      out[i] = sign | 0x7c00;
    } else if (exp <= 0) {
      if (exp < -10) {
        out[i] = sign;
      } else {
        mant |= 0x800000;
        const shift = 14 - exp;
        let half = mant >>> shift;
        const rem = mant & ((1 << shift) - 1);
        const mid = 1 << (shift - 1);
        if (rem > mid || (rem === mid && half & 1)) half++;
        out[i] = sign | half;
      }
    } else {
      let half = (exp << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
      out[i] = sign | half;
    }
  }
  return out;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export interface OnnxModel {
  /** The .onnx file's bytes as chunks (concatenate or write in order). */
  chunks: Uint8Array[];
  byteLength: number;
  /** Present when initializers live in a side file; `location` is relative to the .onnx file. */
  external?: { location: string; chunks: Uint8Array[]; byteLength: number };
}

/** Build the ONNX model. `externalLocation` forces external data (default: only above INLINE_LIMIT). */
export function buildOnnx(graph: Graph, weights: WeightMap, opts: ExportOptions & { externalLocation?: string; externalSink?: (bytes: Uint8Array) => void } = {}): OnnxModel {
  let lowered = lowerGraph(graph, weights, opts.foldBatchNorm ?? true);
  if (opts.transform) lowered = opts.transform(lowered);
  const { nodes, initializers } = lowered;
  if (opts.float16) castAtBoundaries(graph, nodes);
  const elements = (t: Initializer) => t.dims.reduce((a, b) => a * b, 1);
  const floatBytes = initializers.reduce((s, t) => s + (t.lazy || t.data instanceof Float32Array ? (elements(t) * 4) / (opts.float16 ? 2 : 1) : 0), 0);
  const externalLocation = opts.externalLocation ?? (floatBytes > INLINE_LIMIT ? 'model.onnx.data' : undefined);
  const ext: Uint8Array[] = [];
  let extLength = 0;

  const g = new Message();
  encodeNodes(g, nodes);
  g.string(2, graph.inputs.length ? 'tsimm' : 'g');
  // With a sink, external data goes out as each initializer is encoded (folded weights are then held one at a time).
  const emit = (bytes: Uint8Array) => (opts.externalSink ? opts.externalSink(bytes) : ext.push(bytes));
  for (const t of initializers) {
    const m = new Message();
    for (const d of t.dims) m.int(1, d);
    let data: Uint8Array;
    const td = t.data; // read once: lazy initializers compute on each read
    const integer = INTEGER_TYPES.find(([cls]) => td instanceof cls);
    if (integer) {
      m.int(2, integer[1]);
      data = bytesOf(td);
    } else if (opts.float16 && td instanceof Float32Array) {
      m.int(2, FLOAT16);
      data = bytesOf(toHalf(td));
    } else {
      m.int(2, FLOAT);
      data = bytesOf(td);
    }
    m.string(8, t.name);
    if (externalLocation && td instanceof Float32Array && data.byteLength >= 1024) {
      const pad = (64 - (extLength % 64)) % 64;
      if (pad) {
        emit(new Uint8Array(pad));
        extLength += pad;
      }
      const entry = (k: string, v: string) => new Message().string(1, k).string(2, v);
      m.message(13, entry('location', externalLocation));
      m.message(13, entry('offset', String(extLength)));
      m.message(13, entry('length', String(data.byteLength)));
      m.int(14, 1); // EXTERNAL
      emit(data);
      extLength += data.byteLength;
    } else {
      m.bytes(9, data);
    }
    g.message(5, m);
  }
  for (const i of graph.inputs) g.message(11, valueInfo(i, graph.shape(i)));
  const outputs = opts.outputs ?? graph.outputs;
  for (const o of outputs) {
    if (!graph.outputs.includes(o)) throw new Error(`the graph has no output "${o}" (it has ${graph.outputs.join(', ')})`);
    g.message(12, valueInfo(o, graph.shape(o)));
  }
  // Lowering adds values the IR does not have (SiLU's gate): their shape is left to ONNX Runtime.
  for (const o of opts.extraOutputs ?? []) g.message(12, valueInfo(o, graph.shapes.get(o)));

  const model = new Message().int(1, IR_VERSION).string(2, 'tsimm').string(3, '0.1.0');
  model.message(7, g);
  model.message(8, new Message().string(1, '').int(2, OPSET));
  for (const [k, v] of Object.entries(opts.metadata ?? {})) model.message(14, new Message().string(1, k).string(2, v));
  const chunks = model.finish();
  if (!externalLocation && model.length > 2 ** 31 - 1) throw new Error('model exceeds 2 GiB inline; use external data');
  return {
    chunks,
    byteLength: model.length,
    external: externalLocation ? { location: externalLocation, chunks: ext, byteLength: extLength } : undefined,
  };
}

export function concatChunks(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Bytes of the graph's float parameters: decides inline vs external data before anything is built. */
export function needsExternalData(graph: Graph, float16 = false): boolean {
  let n = 0;
  for (const p of graph.params.values()) n += p.shape.reduce((a, b) => a * b, 1);
  return n * (float16 ? 2 : 4) > INLINE_LIMIT;
}

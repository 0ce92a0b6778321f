/**
 * Static post-training int8 quantization in QDQ form, written on the lowered (BatchNorm-folded) graph.
 *
 * Weights: per-output-channel symmetric int8 (zero point 0), biases int32 at scale s_input·s_weight.
 * Activations: uint8 with a calibrated range (min-max, or a percentile of each calibration batch, averaged).
 * The inputs and outputs of every Conv/Gemm and of the elementwise ops ONNX Runtime runs in int8 (Add, Mul,
 * Sigmoid, GlobalAveragePool) get QuantizeLinear → DequantizeLinear, so it fuses them into QLinearConv,
 * QLinearAdd, QLinearMul, QLinearSigmoid. A ReLU that follows a Conv or an Add alone is folded into that
 * quantization (uint8 with zero point 0 clamps at 0). Measured: quantizing only the convs left EfficientNet's
 * SiLU/SE in float, and the conversions around them made int8 2x slower than fp32; with the chain it is at
 * parity at batch 1 and 1.3x faster at batch 8. The rest (softmax, split/concat, reshape) stays float.
 */
import type { Graph } from '../ir/graph.js';
import type { Initializer, Lowered, LoweredNode } from './export.js';

export interface Range {
  min: number;
  max: number;
}

export type CalibrationMethod = 'minmax' | 'percentile';

/** Conv/Add outputs whose only consumer is a ReLU: the ReLU goes, its output name stays. */
function foldRelus(l: Lowered): LoweredNode[] {
  const consumers = new Map<string, LoweredNode[]>();
  for (const n of l.nodes) for (const i of n.inputs) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const drop = new Set<LoweredNode>();
  const rename = new Map<string, string>();
  for (const n of l.nodes) {
    if (n.op !== 'Conv' && n.op !== 'Add') continue;
    const c = consumers.get(n.outputs[0]!) ?? [];
    if (c.length === 1 && c[0]!.op === 'Relu') {
      drop.add(c[0]!);
      rename.set(n.outputs[0]!, c[0]!.outputs[0]!);
    }
  }
  return l.nodes
    .filter((n) => !drop.has(n))
    .map((n) => ({ ...n, outputs: n.outputs.map((o) => rename.get(o) ?? o) }));
}

/**
 * An AveragePool that is exactly a depthwise convolution with weights 1/k² (padding counted, or no padding and
 * no partial ceil-mode window) becomes one: ONNX Runtime's int8 depthwise conv is several times faster than its
 * QLinearAveragePool (ResNeSt's avd pools and the "d" downsample pools: 9.9 ms → see bench/README.md).
 */
export function poolsAsDepthwise(nodes: LoweredNode[], graph: Graph, extra: Initializer[]): LoweredNode[] {
  return nodes.map((n) => {
    if (n.op !== 'AveragePool') return n;
    const shape = graph.shapes.get(n.inputs[0]!);
    const [k, kw] = n.attrs['kernel_shape'] as number[];
    const [s, sw] = n.attrs['strides'] as number[];
    const pads = n.attrs['pads'] as number[];
    if (!shape || k !== kw || s !== sw) return n;
    const [, c, h, w] = shape as number[];
    const padded = pads.some((p) => p > 0);
    const partial = n.attrs['ceil_mode'] === 1 && ((h! - k!) % s! !== 0 || (w! - k!) % s! !== 0);
    if (typeof c !== 'number' || partial || (padded && n.attrs['count_include_pad'] !== 1) || (padded && n.attrs['ceil_mode'] === 1)) return n;
    const weight = `${n.name}:mean_kernel`;
    extra.push({ name: weight, dims: [c, 1, k!, k!], data: new Float32Array(c * k! * k!).fill(1 / (k! * k!)) });
    return { op: 'Conv', name: n.name, inputs: [n.inputs[0]!, weight], outputs: n.outputs, attrs: { kernel_shape: [k!, k!], strides: [s!, s!], pads, group: c } };
  });
}

/**
 * Elementwise ops ONNX Runtime runs in int8 when quantized on both sides (QLinearAdd/Mul/Sigmoid,
 * QLinearGlobalAveragePool): quantizing them keeps SiLU and SE blocks in the int8 chain instead of
 * converting large tensors back and forth around them.
 */
const INT8_CHAIN = new Set(['Add', 'Mul', 'Sigmoid', 'GlobalAveragePool']);

/** Channels per group below which a grouped (not depthwise) conv is faster in float (see isQuantizable). */
export const MIN_INT8_GROUP_WIDTH = 8;

/** Convs (depthwise included) and Gemms with an initializer weight get int8 weights. */
function isQuantizable(n: LoweredNode, inits: Map<string, Initializer>): boolean {
  const w = inits.get(n.inputs[1] ?? '');
  if (!w || (n.op !== 'Conv' && n.op !== 'Gemm')) return false;
  // ONNX Runtime's int8 grouped conv runs group by group: with 4 channels per group (ResNeXt 32x4d's first
  // stage) it took 14 ms where the float conv takes 3.3 ms (batch 8). Narrow groups stay float; depthwise
  // convs (1 channel per group) have their own fast int8 kernel.
  const perGroup = n.op === 'Conv' ? w.dims[1]! : 0;
  return !(perGroup > 1 && perGroup < MIN_INT8_GROUP_WIDTH && ((n.attrs['group'] as number | undefined) ?? 1) > 1);
}

/** The float graph as quantization sees it: ReLUs folded, exact average pools as depthwise convs. */
function int8Form(l: Lowered, graph: Graph): { nodes: LoweredNode[]; inits: Map<string, Initializer> } {
  const added: Initializer[] = [];
  const nodes = poolsAsDepthwise(foldRelus(l), graph, added);
  return { nodes, inits: new Map([...l.initializers, ...added].map((i) => [i.name, i])) };
}

/**
 * The activations to calibrate and quantize, named as in the float graph (a folded ReLU's output stands for
 * its Conv/Add).
 */
export function quantizedTensors(l: Lowered, graph: Graph): string[] {
  const { nodes, inits } = int8Form(l, graph);
  const out = new Set<string>(graph.inputs);
  for (const n of nodes) {
    const q = isQuantizable(n, inits) || INT8_CHAIN.has(n.op);
    if (q) for (const i of n.inputs) if (!inits.has(i)) out.add(i);
    if (q || n.op === 'MaxPool') out.add(n.outputs[0]!);
    // A Split of a quantized tensor splits the uint8 values; its outputs carry the input's parameters.
    if (n.op === 'Split' && out.has(n.inputs[0]!)) for (const o of n.outputs) out.add(o);
  }
  return [...out];
}

/** uint8 asymmetric parameters for a range (widened to contain 0, as the zero point must be exact). */
export function uint8Params(r: Range): { scale: number; zeroPoint: number } {
  const min = Math.min(r.min, 0);
  const max = Math.max(r.max, 0);
  const scale = max > min ? (max - min) / 255 : 1;
  return { scale: Math.fround(scale), zeroPoint: Math.min(255, Math.max(0, Math.round(-min / scale))) };
}

function perChannelInt8(w: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(w[i]!));
    const s = m > 0 ? m / 127 : 1;
    scales[c] = s;
    for (let i = c * per; i < (c + 1) * per; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i]! / s)));
  }
  return { q, scales };
}

/** Rewrite a lowered float graph into QDQ int8 with the calibrated `ranges`. */
export function quantizeLowered(l: Lowered, graph: Graph, ranges: Map<string, Range>): Lowered {
  const quantized = quantizedTensors(l, graph);
  const { nodes, inits } = int8Form(l, graph);
  const extra: Initializer[] = [];
  const params = new Map<string, { scale: number; zeroPoint: number }>();
  // MaxPool and Split keep their input's parameters, so ONNX Runtime drops the Q/DQ around them and runs them
  // on uint8 directly (measured on ResNeSt: a float Split between Q/DQ pairs cost 10% of the int8 run).
  const producer = new Map<string, LoweredNode>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  for (const t of quantized) {
    const p = producer.get(t);
    const inherit = p?.op === 'MaxPool' || p?.op === 'Split' ? params.get(p.inputs[0]!) : undefined;
    const r = ranges.get(t);
    if (!inherit && !r) throw new Error(`no calibration range for ${t}`);
    params.set(t, inherit ?? uint8Params(r!));
  }
  const scalar = (name: string, v: number) => extra.push({ name, dims: [], data: Float32Array.of(v) });
  const out: LoweredNode[] = [];
  const dq = new Map<string, string>();
  const quantize = (t: string) => {
    const { scale, zeroPoint } = params.get(t)!;
    scalar(`${t}:scale`, scale);
    extra.push({ name: `${t}:zero_point`, dims: [], data: Uint8Array.of(zeroPoint) });
    out.push({ op: 'QuantizeLinear', name: `${t}:quantize`, inputs: [t, `${t}:scale`, `${t}:zero_point`], outputs: [`${t}:q`], attrs: {} });
    out.push({ op: 'DequantizeLinear', name: `${t}:dequantize`, inputs: [`${t}:q`, `${t}:scale`, `${t}:zero_point`], outputs: [`${t}:dq`], attrs: {} });
    dq.set(t, `${t}:dq`);
  };
  for (const t of graph.inputs) if (params.has(t)) quantize(t);
  for (const n of nodes) {
    const node = { ...n, inputs: n.inputs.map((i) => dq.get(i) ?? i) };
    if ((n.op === 'Conv' || n.op === 'Gemm') && !isQuantizable(n, inits) && dq.has(n.inputs[0]!)) {
      // A float conv between DequantizeLinear and QuantizeLinear is quantized by ONNX Runtime itself (its
      // WeightBiasQuantization pass, per-tensor): a Relu on the (non-negative, zero point 0) input keeps it float.
      const relu = `${n.inputs[0]}:float`;
      const zeroPoint = params.get(n.inputs[0]!)!.zeroPoint;
      if (zeroPoint === 0) {
        out.push({ op: 'Relu', name: `${n.name}:keep_float`, inputs: [dq.get(n.inputs[0]!)!], outputs: [relu], attrs: {} });
        node.inputs[0] = relu;
      }
    }
    if (isQuantizable(n, inits)) {
      const x = n.inputs[0]!;
      const sx = params.get(x)!.scale;
      const w = inits.get(n.inputs[1]!)!;
      const channels = w.dims[0]!;
      const { q, scales } = perChannelInt8(w.data as Float32Array, channels);
      inits.delete(w.name);
      extra.push({ name: `${w.name}:q`, dims: w.dims, data: q }, { name: `${w.name}:scale`, dims: [channels], data: scales }, { name: `${w.name}:zero_point`, dims: [channels], data: new Int8Array(channels) });
      out.push({ op: 'DequantizeLinear', name: `${w.name}:dequantize`, inputs: [`${w.name}:q`, `${w.name}:scale`, `${w.name}:zero_point`], outputs: [`${w.name}:dq`], attrs: { axis: 0 } });
      node.inputs[1] = `${w.name}:dq`;
      const bName = n.inputs[2];
      if (bName) {
        const b = inits.get(bName)!.data as Float32Array;
        inits.delete(bName);
        const bs = Float32Array.from(scales, (s) => Math.fround(s * sx));
        const bq = Int32Array.from(b, (v, c) => Math.round(v / bs[c]!));
        extra.push({ name: `${bName}:q`, dims: [channels], data: bq }, { name: `${bName}:scale`, dims: [channels], data: bs }, { name: `${bName}:zero_point`, dims: [channels], data: new Int32Array(channels) });
        out.push({ op: 'DequantizeLinear', name: `${bName}:dequantize`, inputs: [`${bName}:q`, `${bName}:scale`, `${bName}:zero_point`], outputs: [`${bName}:dq`], attrs: { axis: 0 } });
        node.inputs[2] = `${bName}:dq`;
      }
    }
    out.push(node);
    for (const o of n.outputs) if (params.has(o) && !graph.inputs.includes(o)) quantize(o);
  }
  return { nodes: out, initializers: [...inits.values(), ...extra] };
}

/** Running calibration statistics over batches. */
export class Calibrator {
  private readonly stats = new Map<string, { min: number; max: number; batches: number }>();
  constructor(
    readonly method: CalibrationMethod = 'minmax',
    /** Percentile of each batch's values kept as its range (percentile method). */
    readonly percentile = 99.99,
  ) {}

  observe(name: string, data: Float32Array): void {
    let lo: number;
    let hi: number;
    if (this.method === 'minmax') {
      lo = Infinity;
      hi = -Infinity;
      for (const v of data) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    } else {
      // A strided sample keeps sorting cheap on large activations.
      const step = Math.max(1, Math.floor(data.length / 200_000));
      const sample = new Float32Array(Math.ceil(data.length / step));
      for (let i = 0, j = 0; i < data.length; i += step) sample[j++] = data[i]!;
      sample.sort();
      const at = (p: number) => sample[Math.min(sample.length - 1, Math.max(0, Math.round((p / 100) * (sample.length - 1))))]!;
      lo = at(100 - this.percentile);
      hi = at(this.percentile);
    }
    const s = this.stats.get(name);
    if (!s) this.stats.set(name, { min: lo, max: hi, batches: 1 });
    else if (this.method === 'minmax') {
      s.min = Math.min(s.min, lo);
      s.max = Math.max(s.max, hi);
    } else {
      s.min = (s.min * s.batches + lo) / (s.batches + 1);
      s.max = (s.max * s.batches + hi) / (s.batches + 1);
      s.batches++;
    }
  }

  ranges(): Map<string, Range> {
    return new Map([...this.stats].map(([k, v]) => [k, { min: v.min, max: v.max }]));
  }
}

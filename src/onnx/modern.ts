/**
 * ONNX lowering of the transformer / ConvNeXt IR ops that are not one ONNX op at opset 17 (GELU, Linear on
 * tokens, parameters used as values, batch broadcast, constant scale, GRN). Written once against a small emitter
 * so inference export (src/onnx/export.ts) and the training graph (src/train/autodiff-modern.ts) lower them alike.
 */
import type { Node, Shape } from '../ir/graph.js';
import type { Initializer, LoweredNode } from './export.js';

export interface Emitter {
  op(op: string, inputs: string[], attrs?: Record<string, number | number[]>, name?: string): string;
  node(op: string, inputs: string[], attrs: Record<string, number | number[]>, name: string, outputs: string[]): unknown;
  scalar(v: number): string;
  ints(values: number[]): string;
}

/** IR ops this file lowers (LayerNormalization and MatMul are single ONNX ops and go through as they are). */
export const MODERN_OPS = new Set(['Gelu', 'Linear', 'Parameter', 'ExpandBatch', 'Scale', 'GRN']);

/** Geometry of a GRN: its spatial axes, the axes reduced for its parameter gradients, the [C] → 4-D view. */
export function grnAxes(n: Node, c: number): { spatial: number[]; nonChannel: number[]; view: number[]; channel: number } {
  const channel = n.attrs['channel_axis'] as number;
  return channel === 3
    ? { spatial: [1, 2], nonChannel: [0, 1, 2], view: [1, 1, 1, c], channel }
    : { spatial: [2, 3], nonChannel: [0, 2, 3], view: [1, c, 1, 1], channel };
}

/**
 * Emit node `n` with data+parameter `inputs` producing `outputs`. Returns values the backward rule reuses
 * (GRN's norms), or undefined for an op this file does not handle.
 */
export function emitModern(e: Emitter, n: Node, inputs: string[], outputs: string[], shape: (v: string) => Shape): Record<string, string> | undefined {
  const name = n.name;
  switch (n.op) {
    case 'Gelu': {
      const x = inputs[0]!;
      if (n.attrs['tanh']) {
        // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        const x3 = e.op('Mul', [e.op('Mul', [x, x], {}, name), x], {}, name);
        const u = e.op('Mul', [e.op('Add', [x, e.op('Mul', [x3, e.scalar(0.044715)], {}, name)], {}, name), e.scalar(Math.sqrt(2 / Math.PI))], {}, name);
        const t = e.op('Tanh', [u], {}, name);
        e.node('Mul', [e.op('Mul', [x, e.op('Add', [t, e.scalar(1)], {}, name)], {}, name), e.scalar(0.5)], {}, name, outputs);
        return { t };
      }
      // x·0.5·(1 + erf(x/√2)): the pattern ONNX Runtime fuses into its Gelu kernel.
      const erf = e.op('Erf', [e.op('Div', [x, e.scalar(Math.SQRT2)], {}, name)], {}, name);
      e.node('Mul', [e.op('Mul', [x, e.op('Add', [erf, e.scalar(1)], {}, name)], {}, name), e.scalar(0.5)], {}, name, outputs);
      return { erf };
    }
    case 'Linear': {
      const [x, ...wb] = inputs as [string, ...string[]];
      const s = shape(n.inputs[0]!);
      if (s.length === 2) {
        e.node('Gemm', [x, ...wb], { transB: 1 }, name, outputs);
        return {};
      }
      // Tokens flattened to rows, one Gemm (ONNX Runtime prepacks its constant weight), and back.
      const rows = e.op('Reshape', [x, e.ints([-1, s[s.length - 1] as number])], {}, name);
      const y = e.op('Gemm', [rows, ...wb], { transB: 1 }, name);
      e.node('Reshape', [y, e.ints([-1, ...(shape(n.outputs[0]!).slice(1) as number[])])], {}, name, outputs);
      return {};
    }
    case 'Parameter':
      e.node('Reshape', [inputs[0]!, e.ints(n.attrs['shape'] as number[])], {}, name, outputs);
      return {};
    case 'ExpandBatch': {
      const [v, like] = inputs as [string, string];
      const batch = e.op('Shape', [like], { start: 0, end: 1 }, name);
      const rest = shape(n.inputs[0]!).slice(1) as number[];
      e.node('Expand', [v, e.op('Concat', [batch, e.ints(rest)], { axis: 0 }, name)], {}, name, outputs);
      return {};
    }
    case 'Scale':
      e.node('Mul', [inputs[0]!, e.scalar(n.attrs['alpha'] as number)], {}, name, outputs);
      return {};
    case 'GRN': {
      const [x, w, b] = inputs as [string, string, string];
      const s = shape(n.inputs[0]!);
      const { spatial, view, channel } = grnAxes(n, s[n.attrs['channel_axis'] as number] as number);
      const g = e.op('Sqrt', [e.op('ReduceSum', [e.op('Mul', [x, x], {}, name), e.ints(spatial)], { keepdims: 1 }, name)], {}, name);
      const d = e.op('Add', [e.op('ReduceMean', [g], { axes: [channel], keepdims: 1 }, name), e.scalar(n.attrs['epsilon'] as number)], {}, name);
      const nrm = e.op('Div', [g, d], {}, name);
      const wv = e.op('Reshape', [w, e.ints(view)], {}, name);
      const bv = e.op('Reshape', [b, e.ints(view)], {}, name);
      const inner = e.op('Add', [bv, e.op('Mul', [wv, e.op('Mul', [x, nrm], {}, name)], {}, name)], {}, name);
      e.node('Add', [x, inner], {}, name, outputs);
      return { g, d, nrm, wv };
    }
    default:
      return undefined;
  }
}

/** An Emitter that appends to a lowered inference graph; its values and constants are named after `base`. */
export function loweringEmitter(nodes: LoweredNode[], initializers: Initializer[], base: string): Emitter {
  let k = 0;
  const fresh = () => `${base}:${k++}`;
  return {
    op(op, inputs, attrs = {}, name = '') {
      const out = fresh();
      nodes.push({ op, name, inputs, outputs: [out], attrs });
      return out;
    },
    node(op, inputs, attrs, name, outputs) {
      nodes.push({ op, name, inputs, outputs, attrs });
    },
    scalar(v) {
      const c = fresh();
      initializers.push({ name: c, dims: [], data: Float32Array.of(v) });
      return c;
    },
    ints(values) {
      const c = fresh();
      initializers.push({ name: c, dims: [values.length], data: BigInt64Array.from(values.map(BigInt)) });
      return c;
    },
  };
}

/**
 * Backward rules of the transformer / ConvNeXt ops (LayerNorm, GELU, MatMul, Linear on tokens, parameters used
 * as values, batch broadcast, constant scale, GRN), one small rule each, as standard ONNX ops (opset 17).
 * Forward lowering is shared with inference export (src/onnx/modern.ts).
 */
import type { Node } from '../ir/graph.js';
import { emitModern, grnAxes } from '../onnx/modern.js';
import type { Ctx, Rule } from './autodiff.js';

const fwd = (c: Ctx, n: Node): void => {
  const saved = emitModern(c.b, n, [...n.inputs, ...n.params], n.outputs, (v) => c.shape(v));
  if (saved) c.saved.set(n, saved);
};

const numAttrs = (n: Node): Record<string, number | number[]> => {
  const a: Record<string, number | number[]> = {};
  for (const [k, v] of Object.entries(n.attrs)) if (typeof v !== 'string') a[k] = v;
  return a;
};

/** Swap the last two axes of a rank-r value. */
const swapLast = (c: Ctx, v: string, r: number): string => {
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 1] = r - 2;
  perm[r - 2] = r - 1;
  return c.b.op('Transpose', [v], { perm });
};

export const MODERN_RULES: Record<string, Rule> = {
  LayerNormalization: {
    forward: (c, n) => {
      c.b.node('LayerNormalization', [...n.inputs, ...n.params], numAttrs(n), n.name, n.outputs);
    },
    backward(c, n, [gy]) {
      // x̂ = (x − μ)·r; dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ; dγ = Σ dy·x̂, dβ = Σ dy over the lead axes.
      const b = c.b;
      const [x] = n.inputs as [string];
      const [w, bias] = n.params as [string, string];
      const r = c.shape(x).length;
      const lead = Array.from({ length: r - 1 }, (_, i) => i);
      const mean = (v: string) => b.op('ReduceMean', [v], { axes: [-1], keepdims: 1 }, `${n.name}:dLN`);
      const xc = b.op('Sub', [x, mean(x)]);
      const rstd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [mean(b.op('Mul', [xc, xc])), b.scalar(n.attrs['epsilon'] as number)])])]);
      const xhat = b.op('Mul', [xc, rstd]);
      if (c.trainable(w)) c.addParamGrad(w, b.op('ReduceSum', [b.op('Mul', [gy!, xhat]), b.ints(lead)], { keepdims: 0 }));
      if (c.trainable(bias)) c.addParamGrad(bias, b.op('ReduceSum', [gy!, b.ints(lead)], { keepdims: 0 }));
      if (!c.needs.has(x)) return [undefined];
      const g = b.op('Mul', [gy!, w]);
      const inner = b.op('Sub', [b.op('Sub', [g, mean(g)]), b.op('Mul', [xhat, mean(b.op('Mul', [g, xhat]))])]);
      return [b.op('Mul', [rstd, inner], {}, `${n.name}:dX`)];
    },
  },

  Gelu: {
    forward: fwd,
    backward(c, n, [gy]) {
      const b = c.b;
      const x = n.inputs[0]!;
      const s = c.saved.get(n)!;
      if (n.attrs['tanh']) {
        // d/dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·k·(1 + 3a·x²), t = tanh(k·(x + a·x³))
        const t = s['t']!;
        const k = Math.sqrt(2 / Math.PI);
        const x2 = b.op('Mul', [x, x]);
        const sech2 = b.op('Sub', [b.scalar(1), b.op('Mul', [t, t])]);
        const du = b.op('Mul', [b.scalar(k), b.op('Add', [b.scalar(1), b.op('Mul', [b.scalar(3 * 0.044715), x2])])]);
        const d = b.op('Add', [b.op('Mul', [b.scalar(0.5), b.op('Add', [b.scalar(1), t])]), b.op('Mul', [b.op('Mul', [b.scalar(0.5), x]), b.op('Mul', [sech2, du])])]);
        return [b.op('Mul', [gy!, d], {}, `${n.name}:dGelu`)];
      }
      // d/dx x·Φ(x) = Φ(x) + x·φ(x), Φ = 0.5·(1 + erf(x/√2)), φ = exp(−x²/2)/√(2π)
      const cdf = b.op('Mul', [b.op('Add', [s['erf']!, b.scalar(1)]), b.scalar(0.5)]);
      const pdf = b.op('Mul', [b.op('Exp', [b.op('Mul', [b.op('Mul', [x, x]), b.scalar(-0.5)])]), b.scalar(1 / Math.sqrt(2 * Math.PI))]);
      return [b.op('Mul', [gy!, b.op('Add', [cdf, b.op('Mul', [x, pdf])])], {}, `${n.name}:dGelu`)];
    },
  },

  MatMul: {
    forward: (c, n) => {
      c.b.node('MatMul', n.inputs, {}, n.name, n.outputs);
    },
    backward(c, n, [gy]) {
      const [a, bb] = n.inputs as [string, string];
      const r = c.shape(a).length;
      const da = c.needs.has(a) ? c.b.op('MatMul', [gy!, swapLast(c, bb, r)], {}, `${n.name}:dA`) : undefined;
      const db = c.needs.has(bb) ? c.b.op('MatMul', [swapLast(c, a, r), gy!], {}, `${n.name}:dB`) : undefined;
      return [da, db];
    },
  },

  Linear: {
    forward: fwd,
    backward(c, n, [gy]) {
      const b = c.b;
      const [x] = n.inputs as [string];
      const [w, bias] = n.params as [string, string | undefined];
      const sx = c.shape(x);
      const out = c.shape(n.outputs[0]!);
      const rows = sx.length === 2 ? x : b.op('Reshape', [x, b.ints([-1, sx[sx.length - 1] as number])]);
      const g2 = sx.length === 2 ? gy! : b.op('Reshape', [gy!, b.ints([-1, out[out.length - 1] as number])]);
      if (c.trainable(w)) c.addParamGrad(w, b.op('Gemm', [g2, rows], { transA: 1 }, `${n.name}:dW`));
      if (bias && c.trainable(bias)) c.addParamGrad(bias, b.op('ReduceSum', [g2, b.ints([0])], { keepdims: 0 }));
      if (!c.needs.has(x)) return [undefined];
      const dx = b.op('Gemm', [g2, w], {}, `${n.name}:dX`);
      return [sx.length === 2 ? dx : b.op('Reshape', [dx, c.shapeOf(x)])];
    },
  },

  Parameter: {
    forward: fwd,
    backward(c, n, [gy]) {
      const p = n.params[0]!;
      if (c.trainable(p)) c.addParamGrad(p, c.b.op('Reshape', [gy!, c.b.ints(c.g.params.get(p)!.shape)]));
      return [];
    },
  },

  ExpandBatch: {
    forward: fwd,
    backward: (c, n, [gy]) => [c.needs.has(n.inputs[0]!) ? c.b.op('ReduceSum', [gy!, c.b.ints([0])], { keepdims: 1 }) : undefined, undefined],
  },

  Scale: {
    forward: fwd,
    backward: (c, n, [gy]) => [c.b.op('Mul', [gy!, c.b.scalar(n.attrs['alpha'] as number)])],
  },

  GRN: {
    forward: fwd,
    backward(c, n, [gy]) {
      // y = x + β + γ·x·ν, ν = g/d, g = ‖x‖ over space, d = mean_c(g) + ε.
      // dν = Σ_space dy·γ·x; dg_k = dν_k/d − Σ_c dν_c·g_c/(C·d²); dx = dy·(1 + γ·ν) + x·dg/g.
      const b = c.b;
      const [x] = n.inputs as [string];
      const [w, bias] = n.params as [string, string];
      const s = c.shape(x);
      const ch = s[n.attrs['channel_axis'] as number] as number;
      const { spatial, nonChannel, channel } = grnAxes(n, ch);
      const { g, d, nrm, wv } = c.saved.get(n)! as Record<string, string>;
      if (c.trainable(bias)) c.addParamGrad(bias, b.op('ReduceSum', [gy!, b.ints(nonChannel)], { keepdims: 0 }));
      if (c.trainable(w)) c.addParamGrad(w, b.op('ReduceSum', [b.op('Mul', [gy!, b.op('Mul', [x, nrm!])]), b.ints(nonChannel)], { keepdims: 0 }));
      if (!c.needs.has(x)) return [undefined];
      const a = b.op('Mul', [b.op('ReduceSum', [b.op('Mul', [gy!, x]), b.ints(spatial)], { keepdims: 1 }), wv!]);
      const cross = b.op('ReduceSum', [b.op('Mul', [a, g!]), b.ints([channel])], { keepdims: 1 });
      const dg = b.op('Sub', [b.op('Div', [a, d!]), b.op('Div', [b.op('Mul', [cross, b.scalar(1 / ch)]), b.op('Mul', [d!, d!])])]);
      // ‖x‖ = 0 only where x = 0 over the whole map: the term is then 0 (PyTorch's norm backward masks it too).
      const viaNorm = b.op('Mul', [x, b.op('Div', [dg, b.op('Max', [g!, b.scalar(1e-30)])])]);
      const direct = b.op('Mul', [gy!, b.op('Add', [b.scalar(1), b.op('Mul', [wv!, nrm!])])]);
      return [b.op('Add', [direct, viaNorm], {}, `${n.name}:dX`)];
    },
  },
};

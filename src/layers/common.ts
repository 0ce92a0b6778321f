/** Layers shared by several families, written against the graph IR. */
import type { ConvOptions, Graph, Param } from '../ir/graph.js';

/**
 * timm's make_divisible: round `v` to a multiple of `divisor` (at least `min`), bumping up a step when rounding
 * lost more than `1 - roundLimit` of the value.
 */
export function makeDivisible(v: number, divisor = 8, min?: number, roundLimit = 0.9): number {
  const floor = min ?? divisor;
  let n = Math.max(floor, Math.floor(Math.floor(v + divisor / 2) / divisor) * divisor);
  if (n < roundLimit * v) n += divisor;
  return n;
}

export type Activation = 'relu' | 'silu' | 'hard_swish' | 'none';

export function activate(g: Graph, x: string, act: Activation, path = ''): string {
  if (act === 'relu') return g.relu(x, path);
  if (act === 'silu') return g.silu(x, path);
  if (act === 'hard_swish') return g.hardSwish(x, path);
  return x;
}

/** conv → BatchNorm → activation, with the conv and the norm at their own checkpoint paths. */
export function convBnAct(g: Graph, x: string, conv: string, bn: string, o: ConvOptions, act: Activation = 'relu', eps = 1e-5): string {
  return activate(g, g.batchNorm(g.conv(x, conv, o), bn, eps), act, bn);
}

export interface SqueezeExciteNames {
  reduce: string;
  expand: string;
}

/**
 * Squeeze-and-excitation: global mean → 1×1 conv (bias) → act → 1×1 conv (bias) → sigmoid → scale the input.
 * The reduced width is the caller's: each source rounds it its own way.
 */
export function squeezeExcite(
  g: Graph,
  x: string,
  path: string,
  rd: number,
  names: SqueezeExciteNames = { reduce: 'fc1', expand: 'fc2' },
  act: Activation = 'relu',
  gate: 'sigmoid' | 'hard_sigmoid' = 'sigmoid',
  gateSlope = 1 / 6,
): string {
  const c = g.shape(x)[1] as number;
  let s = g.globalAvgPool(x, path);
  s = activate(g, g.conv(s, `${path}.${names.reduce}`, { out: rd, kernel: 1, bias: true }), act, path);
  s = g.conv(s, `${path}.${names.expand}`, { out: c, kernel: 1, bias: true });
  s = gate === 'hard_sigmoid' ? g.hardSigmoid(s, path, gateSlope) : g.sigmoid(s, path);
  return g.mul(x, s, path);
}

/**
 * Global average pool → flatten (the pre-logits "features" output) → [dropout, training graphs only] → linear
 * classifier (the "logits" output).
 */
export function classifierHead(g: Graph, x: string, classifier: string, numClasses: number, dropRate = 0): void {
  const features = g.output(g.flatten(g.globalAvgPool(x, 'global_pool'), 'global_pool'), 'features');
  g.output(g.linear(g.dropout(features, dropRate, 'head_drop'), classifier, numClasses), 'logits');
}

/** timm's per-block stochastic depth schedule: rate · index / count (the first block 0). */
export const dropPathSchedule = (rate: number | undefined, index: number, count: number): number => ((rate ?? 0) * index) / count;

/** The four BatchNorm tensors of `path`, for Graph.reserve. */
export function bnParams(path: string, c: number): Param[] {
  return [
    { name: `${path}.weight`, shape: [c], role: 'bn_weight' },
    { name: `${path}.bias`, shape: [c], role: 'bn_bias' },
    { name: `${path}.running_mean`, shape: [c], role: 'bn_mean' },
    { name: `${path}.running_var`, shape: [c], role: 'bn_var' },
  ];
}

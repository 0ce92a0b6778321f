/**
 * Optimizers and parameter groups, on host Float32Arrays (no Node or browser API: the page uses them too).
 * The update runs in TypeScript rather than in the graph: it is a few passes over the weights (ResNet-50: 25 M
 * values, ~30 ms) against seconds of forward/backward, and it keeps accumulation, clipping and schedules simple.
 *
 * Semantics are PyTorch's: SGD with momentum (the first buffer is the gradient), dampening 0, optional Nesterov,
 * weight decay added to the gradient; AdamW with decoupled decay and bias correction. Groups follow timm's
 * optimizer factory: no weight decay on biases and rank ≤ 1 tensors.
 */

export type OptimizerKind = 'sgd' | 'adamw';

export interface OptimizerOptions {
  optimizer?: OptimizerKind;
  lr?: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
  /** AdamW betas (default 0.9, 0.999) and epsilon (default 1e-8). */
  betas?: [number, number];
  eps?: number;
}

export interface ParamGroup {
  names: string[];
  lrScale: number;
  weightDecay: number;
}

export interface ParamShape {
  name: string;
  shape: number[];
}

/** Stage of a parameter: k for the k-th stage (`layer{k}`, `s{k}`, `blocks.{k-1}`), -1 elsewhere (stem or head). */
export function stageOf(name: string, stages: string[]): number {
  const m = /^(layer\d+|s\d+|blocks\.\d+|stages\.\d+|layer0)\b/.exec(name);
  if (m) return stages.indexOf(m[1]!) + 1;
  return -1;
}

/** The block a parameter belongs to (timm's layer-decay granularity): `layer1.0`, `blocks.2.1`, or its top module. */
function blockOf(name: string): string {
  // A ConvNeXt block (`stages.1.blocks.0`), a ViT block (`blocks.3`, whose next part is a module name).
  const t = /^(stages\.\d+\.blocks\.\d+|blocks\.\d+)\.(?!\d)/.exec(name);
  if (t) return t[1]!;
  const m = /^((?:layer\d+|s\d+|blocks\.\d+|stages\.\d+)\.[^.]+)/.exec(name);
  if (m) return m[1]!;
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(0, dot);
}

export interface GroupOptions {
  weightDecay?: number;
  /** timm's layer-wise decay: block i of L gets lr × decay^(L + 1 − i); the stem is block 0, the head L + 1. */
  layerDecay?: number;
  /** PaddleClas lr_mult_list: a multiplier for the stem and each stage (the head keeps 1). */
  lrMult?: number[];
  /** Extra multipliers by name prefix (the longest matching prefix wins). */
  lrScale?: Record<string, number>;
}

/** Parameters timm's models exclude from weight decay by name (VisionTransformer.no_weight_decay). */
const NO_DECAY = new Set(['pos_embed', 'cls_token', 'dist_token']);

export function paramGroups(params: ParamShape[], o: GroupOptions = {}): ParamGroup[] {
  const wd = o.weightDecay ?? 0;
  const stageNames: string[] = [];
  for (const p of params) {
    const m = /^(layer\d+|s\d+|blocks\.\d+|stages\.\d+)\b/.exec(p.name);
    if (m && !stageNames.includes(m[1]!)) stageNames.push(m[1]!);
  }
  const blocks: string[] = [];
  for (const p of params) {
    const b = blockOf(p.name);
    if (!blocks.includes(b)) blocks.push(b);
  }
  // Stem modules (before the first stage) share id 0; blocks count up; anything after the last stage is the head.
  const ids = new Map<string, number>();
  let id = 0;
  let seenStage = false;
  for (const b of blocks) {
    const isStage = /^(layer\d+|s\d+|blocks\.\d+|stages\.\d+)(\.|$)/.test(b);
    if (isStage) {
      seenStage = true;
      ids.set(b, ++id);
    } else if (!seenStage) {
      ids.set(b, 0);
    }
  }
  const headId = id + 1;
  const groups = new Map<string, ParamGroup>();
  for (const p of params) {
    let scale = 1;
    if (o.layerDecay !== undefined) scale *= o.layerDecay ** (headId - (ids.get(blockOf(p.name)) ?? headId));
    if (o.lrMult) {
      const block = ids.get(blockOf(p.name)) ?? headId;
      const s = block === 0 ? 0 : stageOf(p.name, stageNames);
      if (s >= 0) scale *= o.lrMult[Math.min(s, o.lrMult.length - 1)] ?? 1;
    }
    if (o.lrScale) {
      const best = Object.keys(o.lrScale).filter((k) => p.name === k || p.name.startsWith(`${k}.`) || p.name.startsWith(k)).sort((a, b) => b.length - a.length)[0];
      if (best !== undefined) scale *= o.lrScale[best]!;
    }
    // timm's rule, and its ViT/DeiT no_weight_decay() names (tokens and position embeddings are rank 3).
    const decay = p.shape.length <= 1 || p.name.endsWith('.bias') || NO_DECAY.has(p.name) ? 0 : wd;
    const key = `${scale}|${decay}`;
    const g = groups.get(key) ?? { names: [], lrScale: scale, weightDecay: decay };
    g.names.push(p.name);
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** Scale gradients in place so their global L2 norm is at most `max`; returns the norm before clipping. */
export function clipGradNorm(grads: Iterable<Float32Array>, max: number): number {
  const list = [...grads];
  let sq = 0;
  for (const g of list) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  if (norm > max) {
    const k = max / (norm + 1e-6);
    for (const g of list) for (let i = 0; i < g.length; i++) g[i]! *= k;
  }
  return norm;
}

export interface OptimizerState {
  kind: OptimizerKind;
  step: number;
  /** Per parameter: SGD [momentum], AdamW [exp_avg, exp_avg_sq]. */
  buffers: Record<string, Float32Array[]>;
}

export class Optimizer {
  readonly kind: OptimizerKind;
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly betas: [number, number];
  readonly eps: number;
  step = 0;
  buffers = new Map<string, Float32Array[]>();

  constructor(
    readonly groups: ParamGroup[],
    o: OptimizerOptions = {},
  ) {
    this.kind = o.optimizer ?? 'sgd';
    this.momentum = o.momentum ?? (this.kind === 'sgd' ? 0.9 : 0);
    this.nesterov = o.nesterov ?? false;
    this.betas = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
  }

  /** One update of `params` in place with `grads` at base learning rate `lr`. */
  update(params: Map<string, Float32Array>, grads: Map<string, Float32Array>, lr: number): void {
    this.step++;
    for (const g of this.groups) {
      const glr = lr * g.lrScale;
      for (const name of g.names) {
        const p = params.get(name);
        const d = grads.get(name);
        if (!p || !d) continue;
        if (this.kind === 'sgd') this.sgd(name, p, d, glr, g.weightDecay);
        else this.adamw(name, p, d, glr, g.weightDecay);
      }
    }
  }

  private sgd(name: string, p: Float32Array, d: Float32Array, lr: number, wd: number): void {
    const m = this.momentum;
    if (m === 0) {
      for (let i = 0; i < p.length; i++) p[i] = p[i]! - lr * (d[i]! + wd * p[i]!);
      return;
    }
    let buf = this.buffers.get(name)?.[0];
    const first = !buf;
    if (!buf) {
      buf = new Float32Array(p.length);
      this.buffers.set(name, [buf]);
    }
    for (let i = 0; i < p.length; i++) {
      const g = d[i]! + wd * p[i]!;
      const b = first ? g : m * buf[i]! + g;
      buf[i] = b;
      p[i] = p[i]! - lr * (this.nesterov ? g + m * b : b);
    }
  }

  private adamw(name: string, p: Float32Array, d: Float32Array, lr: number, wd: number): void {
    let bufs = this.buffers.get(name);
    if (!bufs) {
      bufs = [new Float32Array(p.length), new Float32Array(p.length)];
      this.buffers.set(name, bufs);
    }
    const [m, v] = bufs as [Float32Array, Float32Array];
    const [b1, b2] = this.betas;
    const bc1 = 1 - b1 ** this.step;
    const bc2 = Math.sqrt(1 - b2 ** this.step);
    const stepSize = lr / bc1;
    const decay = 1 - lr * wd;
    for (let i = 0; i < p.length; i++) {
      const g = d[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * g;
      v[i] = b2 * v[i]! + (1 - b2) * g * g;
      p[i] = p[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2 + this.eps);
    }
  }

  state(): OptimizerState {
    return { kind: this.kind, step: this.step, buffers: Object.fromEntries(this.buffers) };
  }

  load(s: OptimizerState): void {
    if (s.kind !== this.kind) throw new Error(`optimizer state is ${s.kind}, this optimizer is ${this.kind}`);
    this.step = s.step;
    this.buffers = new Map(Object.entries(s.buffers));
  }
}

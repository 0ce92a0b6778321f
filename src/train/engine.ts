/**
 * One training step around a training graph, independent of the runtime: onnxruntime-node in Node and
 * onnxruntime-web in the page pass their own `run`. The graph gives the loss, the logits, every trainable
 * gradient and the batch statistics of train-mode BatchNorms; the host updates the running statistics (momentum
 * 0.1, unbiased variance, as PyTorch), accumulates, clips and applies the optimizer.
 */
import { deriveRng } from '../data/augment.js';
import { mixupTargets } from './mixup.js';
import { clipGradNorm, Optimizer, paramGroups, type GroupOptions, type OptimizerOptions, type ParamShape } from './optim.js';

export interface BnStatSpec {
  path: string;
  mean: string;
  var: string;
  spatial: number;
}

/** A DropPath/Dropout mask input of a training graph: `dims` after the batch dimension. */
export interface MaskSpec {
  input: string;
  kind: 'path' | 'drop';
  rate: number;
  dims: number[];
}

/** Salt of the mask stream, so it is independent of the data order, augmentation and mixup streams. */
const MASK_STREAM = 0x64726f70;

/**
 * One step's masks: each entry kept with probability 1 − rate and then worth 1 / (1 − rate) (timm's DropPath
 * and dropout scale by the keep probability), else 0. They are a function of `keys` alone, so a resumed run
 * draws what an uninterrupted one would.
 */
export function dropMasks(masks: readonly MaskSpec[], n: number, keys: readonly number[]): Record<string, Feed> {
  const rng = deriveRng(MASK_STREAM, ...keys);
  const out: Record<string, Feed> = {};
  for (const m of masks) {
    const keep = 1 - m.rate;
    const data = new Float32Array(n * m.dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = rng.random() < keep ? 1 / keep : 0;
    out[m.input] = { data, dims: [n, ...m.dims] };
  }
  return out;
}

/** What the host needs to know of a training graph (its ONNX bytes aside). */
export interface TrainSpec {
  paramInputs: string[];
  paramShapes: Record<string, number[]>;
  gradOutputs: Record<string, string>;
  bnStats: BnStatSpec[];
  inputs: { x: string; targets: string; teacher?: string };
  /** Scalar outputs with the loss's parts (distillation: loss_ce, loss_kd). */
  lossTerms?: string[];
  inputShape: (number | string)[];
  numClasses: number;
  /** Stochastic depth / dropout masks (absent when the model has none). */
  masks?: MaskSpec[];
}

export interface Feed {
  data: Float32Array;
  dims: number[];
}

export type RunFn = (feeds: Record<string, Feed>, outputs: string[]) => Promise<Record<string, Float32Array>>;

/** The part of an ONNX Runtime session (onnxruntime-node and -web share it) a step needs. */
export interface OrtSessionLike<T> {
  run(feeds: Record<string, T>, outputs: string[]): Promise<Record<string, { data: unknown }>>;
}

/** `run` on an ONNX Runtime session: float32 feeds become the runtime's tensors (`tensor`), outputs come back as arrays. */
export function ortRun<T>(session: () => Promise<OrtSessionLike<T>>, tensor: (data: Float32Array, dims: number[]) => T): RunFn {
  return async (feeds, outputs) => {
    const inputs: Record<string, T> = {};
    for (const [k, v] of Object.entries(feeds)) inputs[k] = tensor(v.data, v.dims);
    const r = await (await session()).run(inputs, outputs);
    const out: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(r)) out[k] = v.data as Float32Array;
    return out;
  };
}

export interface EngineOptions extends OptimizerOptions, GroupOptions {
  /** Label smoothing for class-index targets (timm's default recipe uses 0.1). */
  labelSmoothing?: number;
  /** Running-statistics momentum of train-mode BatchNorm (PyTorch's 0.1). */
  bnMomentum?: number;
  /** Clip the global gradient norm to this value. */
  clipGrad?: number;
  /** Apply the optimizer every `accumulate` steps, on the mean of their gradients. */
  accumulate?: number;
}

/** Class indices (one per sample) or soft targets [N, C]. */
export type Targets = ArrayLike<number> | Feed;

export class TrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainError';
  }
}

export interface ForwardBackward {
  loss: number;
  losses: Float32Array;
  logits: Float32Array;
  grads: Map<string, Float32Array>;
  /** Batch mean and biased variance per train-mode BatchNorm. */
  batchStats: Map<string, { mean: Float32Array; var: Float32Array }>;
  /** The loss's parts by output name (distillation: loss_ce, loss_kd). */
  terms: Record<string, number>;
}

export interface StepResult {
  loss: number;
  losses: Float32Array;
  logits: Float32Array;
  lr: number;
  /** Whether the optimizer ran on this step (every `accumulate` steps). */
  updated: boolean;
  /** Global gradient norm before clipping (when clipping is on). */
  gradNorm?: number;
  terms: Record<string, number>;
}

const isFeed = (t: Targets): t is Feed => (t as Feed).dims !== undefined;

export class TrainEngine {
  readonly optimizer: Optimizer;
  lr: number;
  /** Steps taken (forward/backward passes). */
  steps = 0;
  private acc?: Map<string, Float32Array>;
  private accCount = 0;

  constructor(
    readonly spec: TrainSpec,
    /** Every weight of the model (parameters and running statistics), updated in place. */
    readonly weights: Map<string, Float32Array>,
    readonly o: EngineOptions,
    readonly run: RunFn,
    params: ParamShape[],
  ) {
    this.lr = o.lr ?? 0.01;
    const trainable = new Set(spec.paramInputs);
    this.optimizer = new Optimizer(paramGroups(params.filter((p) => trainable.has(p.name)), o), o);
  }

  /** Soft targets [N, C] from class indices (with label smoothing) or given soft targets (checked). */
  softTargets(t: Targets, n: number): Float32Array {
    const c = this.spec.numClasses;
    if (isFeed(t)) {
      if (t.dims.length !== 2 || t.dims[0] !== n || t.dims[1] !== c) throw new TrainError(`soft targets must be [${n}, ${c}], got [${t.dims.join(', ')}]`);
      return t.data;
    }
    if (t.length !== n) throw new TrainError(`got ${t.length} targets for a batch of ${n}`);
    for (let i = 0; i < n; i++) {
      const k = t[i]!;
      if (!Number.isInteger(k) || k < 0 || k >= c) throw new TrainError(`target ${i} is ${k}: class indices must be integers in [0, ${c})`);
    }
    // Label smoothing is mixup's target rule with λ = 1.
    return mixupTargets(t, c, 1, this.o.labelSmoothing ?? 0);
  }

  private checkBatch(x: Feed): number {
    const s = this.spec.inputShape;
    const ok = x.dims.length === 4 && x.dims.slice(1).every((d, i) => d === s[i + 1]) && x.dims[0]! >= 1;
    if (!ok || x.data.length !== x.dims.reduce((a, b) => a * b, 1)) {
      throw new TrainError(`the batch must be [N, ${s.slice(1).join(', ')}] float32, got [${x.dims.join(', ')}] (${x.data.length} values)`);
    }
    return x.dims[0]!;
  }

  /** Loss, logits and gradients of one batch; nothing is updated. */
  async forwardBackward(x: Feed, targets: Targets, teacher?: Feed, maskKeys?: readonly number[]): Promise<ForwardBackward> {
    const n = this.checkBatch(x);
    const { spec } = this;
    const feeds: Record<string, Feed> = { [spec.inputs.x]: x, [spec.inputs.targets]: { data: this.softTargets(targets, n), dims: [n, spec.numClasses] } };
    if (spec.inputs.teacher) {
      if (!teacher || teacher.dims[0] !== n || teacher.dims[1] !== spec.numClasses) throw new TrainError(`distillation needs teacher logits [${n}, ${spec.numClasses}]`);
      feeds[spec.inputs.teacher] = teacher;
    }
    for (const p of spec.paramInputs) feeds[p] = { data: this.weights.get(p)!, dims: spec.paramShapes[p]! };
    // Without keys from the caller (fit passes seed, epoch, batch) the masks follow the step count.
    if (spec.masks?.length) Object.assign(feeds, dropMasks(spec.masks, n, maskKeys ?? [this.steps]));
    const outputs = ['loss', 'losses', 'logits', ...(spec.lossTerms ?? []), ...Object.values(spec.gradOutputs), ...spec.bnStats.flatMap((b) => [b.mean, b.var])];
    const r = await this.run(feeds, outputs);
    const grads = new Map<string, Float32Array>();
    for (const [p, o] of Object.entries(spec.gradOutputs)) grads.set(p, r[o]!);
    const batchStats = new Map(spec.bnStats.map((b) => [b.path, { mean: r[b.mean]!, var: r[b.var]! }]));
    const terms = Object.fromEntries((spec.lossTerms ?? []).map((t) => [t, r[t]![0]!]));
    return { loss: r['loss']![0]!, losses: r['losses']!, logits: r['logits']!, grads, batchStats, terms };
  }

  /** running = (1 − m)·running + m·batch, with the batch variance made unbiased (count N·H·W). */
  updateRunningStats(fb: ForwardBackward, n: number): void {
    const m = this.o.bnMomentum ?? 0.1;
    for (const b of this.spec.bnStats) {
      const s = fb.batchStats.get(b.path)!;
      const count = n * b.spatial;
      const unbias = count > 1 ? count / (count - 1) : 1;
      const rm = this.weights.get(`${b.path}.running_mean`)!;
      const rv = this.weights.get(`${b.path}.running_var`)!;
      for (let i = 0; i < rm.length; i++) {
        rm[i] = (1 - m) * rm[i]! + m * s.mean[i]!;
        rv[i] = (1 - m) * rv[i]! + m * s.var[i]! * unbias;
      }
    }
  }

  /** Forward, backward, running statistics, and (every `accumulate` steps) the optimizer. */
  async step(x: Feed, targets: Targets, teacher?: Feed, maskKeys?: readonly number[]): Promise<StepResult> {
    const fb = await this.forwardBackward(x, targets, teacher, maskKeys);
    this.steps++;
    if (!Number.isFinite(fb.loss)) {
      throw new TrainError(`step ${this.steps}: the loss is ${fb.loss} at learning rate ${this.lr}; nothing was updated — lower the learning rate or check the data`);
    }
    this.updateRunningStats(fb, x.dims[0]!);
    const k = this.o.accumulate ?? 1;
    let grads = fb.grads;
    if (k > 1) {
      if (!this.acc) this.acc = new Map([...fb.grads].map(([p, g]) => [p, new Float32Array(g.length)]));
      for (const [p, g] of fb.grads) {
        const a = this.acc.get(p)!;
        for (let i = 0; i < g.length; i++) a[i]! += g[i]! / k;
      }
      if (++this.accCount < k) return { loss: fb.loss, losses: fb.losses, logits: fb.logits, lr: this.lr, updated: false, terms: fb.terms };
      grads = this.acc;
    }
    const gradNorm = this.o.clipGrad !== undefined ? clipGradNorm(grads.values(), this.o.clipGrad) : undefined;
    this.optimizer.update(this.weights, grads, this.lr);
    if (k > 1) {
      for (const a of this.acc!.values()) a.fill(0);
      this.accCount = 0;
    }
    return { loss: fb.loss, losses: fb.losses, logits: fb.logits, lr: this.lr, updated: true, terms: fb.terms, ...(gradNorm !== undefined ? { gradNorm } : {}) };
  }
}

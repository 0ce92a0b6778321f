/**
 * Reverse-mode autodiff over the graph IR: one more reader of the same graph. The forward pass is lowered to
 * ONNX as for inference (BatchNorm unfolded, in train or frozen mode), then each IR node, in reverse order,
 * emits its backward rule as standard ONNX ops (opset 17), so onnxruntime-node and onnxruntime-web run the
 * training graph with their ordinary kernels: they ship no training ops.
 *
 * Only what needs a gradient is differentiated: a value needs one when it depends on a trainable parameter, so
 * frozen layers below the lowest trainable one cost a forward pass and nothing else.
 */
import type { Dim, Graph, Node, Shape } from '../ir/graph.js';
import { numel } from '../ir/graph.js';
import type { WeightMap } from '../onnx/export.js';
import { buildLoss, type LossSpec } from './loss.js';
import type { BnStatSpec, MaskSpec, TrainSpec } from './engine.js';
import { OnnxBuilder } from './onnx-builder.js';
import { MODERN_RULES } from './autodiff-modern.js';
import { nchwcConv, nchwcWeightGrad } from './nchwc.js';

export interface TrainGraphOptions {
  /** Parameters that get a gradient (graph inputs); every other parameter is a constant of the graph. */
  trainable: ReadonlySet<string>;
  /** Whether the BatchNorm at this module path normalizes with batch statistics (train mode). */
  bnTrain: (path: string) => boolean;
  loss: LossSpec;
  /** Weights for the frozen parameters (stored in the graph as initializers). */
  weights: WeightMap;
  /** Intermediate IR values to expose as extra outputs (debugging parity). */
  extraOutputs?: string[];
  /**
   * ONNX Runtime's NCHWc block size (8 or 16) to run convs with fed weights on its blocked kernels
   * (src/train/nchwc.ts); absent or 0: standard ONNX only (onnxruntime-web, other runtimes).
   */
  nchwc?: number;
  /** With `nchwc`: group-1 weight gradients as blocked convs over the batch too (default true). */
  nchwcWeightGrad?: boolean;
}


export interface TrainGraph extends TrainSpec {
  bytes: Uint8Array;
}

const SPATIAL = [0, 2, 3];

/** Per-op lowering state handed from the forward rule to the backward rule. */
type Saved = Record<string, string>;

export class Ctx {
  readonly b = new OnnxBuilder();
  readonly saved = new Map<Node, Saved>();
  readonly needs = new Set<string>();
  private readonly grads = new Map<string, string[]>();
  readonly paramGrads = new Map<string, string[]>();
  /** Random masks of DropPath/Dropout nodes: graph inputs the host fills each step from the step's seed. */
  readonly masks: MaskSpec[] = [];

  constructor(
    readonly g: Graph,
    readonly o: TrainGraphOptions,
  ) {}

  shape(v: string): Shape {
    return this.g.shape(v);
  }
  trainable(p: string): boolean {
    return this.o.trainable.has(p);
  }
  /** Runtime shape of a value (for Expand / ConstantOfShape / Reshape back to an input's shape). */
  shapeOf(v: string): string {
    return this.b.once(`shape:${v}`, () => this.b.op('Shape', [v]));
  }
  /** 1/N as a float [1], from the input's runtime batch size. */
  invN(): string {
    return this.b.once('invN', () => {
      const n = this.b.op('Shape', [this.g.inputs[0]!], { start: 0, end: 1 });
      return this.b.op('Reciprocal', [this.b.op('Cast', [n], { to: 1 })]);
    });
  }
  /** A [C] vector (parameter or value) viewed as [1, C, 1, 1], once per graph. */
  channel(p: string, c: number): string {
    return this.b.once(`c4:${p}`, () => this.b.op('Reshape', [p, this.b.ints([1, c, 1, 1])]));
  }
  addGrad(v: string, g: string | undefined): void {
    if (!g || !this.needs.has(v)) return;
    const list = this.grads.get(v);
    if (list) list.push(g);
    else this.grads.set(v, [g]);
  }
  addParamGrad(p: string, g: string): void {
    const list = this.paramGrads.get(p);
    if (list) list.push(g);
    else this.paramGrads.set(p, [g]);
  }
  /** The total gradient of a value (contributions summed), or undefined when nothing flows into it. */
  grad(v: string): string | undefined {
    const list = this.grads.get(v);
    if (!list) return undefined;
    return list.reduce((s, t) => this.b.op('Add', [s, t]));
  }
  zerosLike(v: string): string {
    return this.b.op('ConstantOfShape', [this.shapeOf(v)]);
  }
  /** Sum a broadcast gradient back to an operand's shape. */
  reduceTo(gy: string, from: Shape, to: Shape): string {
    const axes = to.map((d, i) => (d === 1 && from[i] !== 1 ? i : -1)).filter((i) => i >= 0);
    return axes.length ? this.b.op('ReduceSum', [gy, this.b.ints(axes)], { keepdims: 1 }) : gy;
  }
}

export interface Rule {
  forward(c: Ctx, n: Node): void;
  /** Gradients of the inputs (undefined where not needed); parameter gradients go to `c.addParamGrad`. */
  backward(c: Ctx, n: Node, gys: (string | undefined)[]): (string | undefined)[];
}

const attrs = (n: Node): Record<string, number | number[]> => {
  const a: Record<string, number | number[]> = {};
  for (const [k, v] of Object.entries(n.attrs)) if (typeof v !== 'string') a[k] = v;
  return a;
};

/** Forward as in inference lowering, one ONNX node. */
const plain = (c: Ctx, n: Node, inputs = [...n.inputs, ...n.params], extra: Record<string, number | number[]> = {}) => {
  c.b.node(n.op, inputs, { ...attrs(n), ...extra }, n.name, n.outputs);
};

/** Window geometry shared by the pooling and conv backward rules. */
function geometry(c: Ctx, n: Node) {
  const [, ch, h, w] = c.shape(n.inputs[0]!) as [Dim, number, number, number];
  const [, , oh, ow] = c.shape(n.outputs[0]!) as [Dim, number, number, number];
  const [kh, kw] = n.attrs['kernel_shape'] as number[];
  const [sh, sw] = (n.attrs['strides'] as number[] | undefined) ?? [1, 1];
  const [dh, dw] = (n.attrs['dilations'] as number[] | undefined) ?? [1, 1];
  const pads = (n.attrs['pads'] as number[] | undefined) ?? [0, 0, 0, 0];
  return { ch, h, w, oh, ow, kh: kh!, kw: kw!, sh: sh!, sw: sw!, dh: dh!, dw: dw!, pads };
}

/**
 * The one kernel tap a conv on a 1×1 map reads (every other tap sees only padding), or undefined: such a conv is
 * a matrix product with that tap, [N, C] · W[:, :, ti, tj]ᵀ (resnet18 at 32 px: 3 of its 512→512 3×3 convs,
 * where im2col spent 8 of 9 columns on zeros).
 */
function centreTap(c: Ctx, n: Node): [number, number] | undefined {
  const { h, w, oh, ow, kh, kw, dh, dw, pads } = geometry(c, n);
  const group = (n.attrs['group'] as number) ?? 1;
  const [pt, pl] = pads as [number, number];
  if (h !== 1 || w !== 1 || oh !== 1 || ow !== 1 || group !== 1 || kh * kw === 1 || pt % dh !== 0 || pl % dw !== 0) return undefined;
  const [ti, tj] = [pt / dh, pl / dw];
  return ti < kh && tj < kw ? [ti, tj] : undefined;
}

/** A transposed window op's output cut back to the input's extent: `full` starts at -pad, spans `size`. */
function cropTo(c: Ctx, v: string, fullH: number, fullW: number, pt: number, pl: number, h: number, w: number): string {
  const padH = Math.max(0, pt + h - fullH);
  const padW = Math.max(0, pl + w - fullW);
  let x = v;
  if (padH || padW) x = c.b.op('Pad', [x, c.b.ints([0, 0, 0, 0, 0, 0, padH, padW])]);
  if (pt || pl || fullH + padH !== h || fullW + padW !== w) {
    x = c.b.op('Slice', [x, c.b.ints([pt, pl]), c.b.ints([pt + h, pl + w]), c.b.ints([2, 3])]);
  }
  return x;
}

/**
 * How a conv's weight gradient is lowered. One GEMM per kernel tap (dy as [O, N·P] times the tap's input window
 * as [C, N·P]ᵀ) is compute-bound; the grouped-conv form runs C matrix-vector products (one per input channel)
 * and wins only when C is small (the RGB stem) or the conv is grouped.
 */
function dwByGemm(group: number, ch: number, kh: number, kw: number): boolean {
  return group === 1 && ch >= 16 && kh * kw <= 9;
}

function convWeightGradGemm(c: Ctx, n: Node, gy: string): string {
  const b = c.b;
  const x = n.inputs[0]!;
  const { ch, oh, ow, kh, kw, sh, sw, dh, dw, pads } = geometry(c, n);
  const out = c.shape(n.outputs[0]!)[1] as number;
  const g2 = b.op('Reshape', [b.op('Transpose', [gy], { perm: [1, 0, 2, 3] }), b.ints([out, -1])], {}, `${n.name}:dW`);
  const padded = pads.some((p) => p > 0) ? b.op('Pad', [x, b.ints([0, 0, pads[0]!, pads[1]!, 0, 0, pads[2]!, pads[3]!])], {}, `${n.name}:dW`) : x;
  const xt = b.op('Transpose', [padded], { perm: [1, 0, 2, 3] }, `${n.name}:dW`);
  const [, , hp, wp] = [0, 0, c.shape(x)[2] as number + pads[0]! + pads[2]!, (c.shape(x)[3] as number) + pads[1]! + pads[3]!];
  const taps: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const h0 = i * dh;
      const w0 = j * dw;
      const whole = h0 === 0 && w0 === 0 && sh === 1 && sw === 1 && oh === hp && ow === wp;
      const win = whole ? xt : b.op('Slice', [xt, b.ints([h0, w0]), b.ints([h0 + sh * (oh - 1) + 1, w0 + sw * (ow - 1) + 1]), b.ints([2, 3]), b.ints([sh, sw])], {}, `${n.name}:dW`);
      const tap = b.op('Gemm', [g2, b.op('Reshape', [win, b.ints([ch, -1])])], { transB: 1 }, `${n.name}:dW`);
      taps.push(kh * kw === 1 ? tap : b.op('Reshape', [tap, b.ints([out, ch, 1])]));
    }
  }
  const stacked = taps.length === 1 ? taps[0]! : b.op('Concat', taps, { axis: 2 }, `${n.name}:dW`);
  return b.op('Reshape', [stacked, b.ints([out, ch, kh, kw])]);
}

/** y = x · mask with a host-fed mask input (DropPath: one value per sample; Dropout: one per element). */
const masked: Rule = {
  forward(c, n) {
    const x = n.inputs[0]!;
    const s = c.shape(x);
    const rate = n.attrs['rate'] as number;
    const kind = n.op === 'DropPath' ? 'path' : 'drop';
    const dims = kind === 'path' ? s.map((d, i) => (i === 0 ? d : 1)) : s;
    const mask = c.b.input(`mask:${n.name || n.outputs[0]}`, dims);
    c.masks.push({ input: mask, kind, rate, dims: dims.slice(1) as number[] });
    c.b.node('Mul', [x, mask], {}, n.name, n.outputs);
    c.saved.set(n, { mask });
  },
  backward: (c, n, [gy]) => [c.b.op('Mul', [gy!, c.saved.get(n)!['mask']!], {}, `${n.name}:dDrop`)],
};

const RULES: Record<string, Rule> = {
  DropPath: masked,
  Dropout: masked,

  HardSigmoid: {
    forward: (c, n) => plain(c, n),
    // alpha·dy strictly inside the linear part, |x| < 0.5 / alpha (PyTorch's hardsigmoid_backward: −3 < x < 3).
    backward(c, n, [gy]) {
      const b = c.b;
      const alpha = n.attrs['alpha'] as number;
      const inside = b.op('Cast', [b.op('Less', [b.op('Abs', [n.inputs[0]!]), b.scalar(0.5 / alpha)])], { to: 1 });
      return [b.op('Mul', [gy!, b.op('Mul', [inside, b.scalar(alpha)])], {}, `${n.name}:dHardSigmoid`)];
    },
  },

  HardSwish: {
    forward: (c, n) => plain(c, n),
    // PyTorch's hardswish_backward: 0 for x < −3, x/3 + 1/2 for −3 ≤ x ≤ 3, 1 above.
    backward(c, n, [gy]) {
      const b = c.b;
      const x = n.inputs[0]!;
      const mid = b.op('Add', [b.op('Mul', [x, b.scalar(1 / 3)]), b.scalar(0.5)]);
      const upper = b.op('Where', [b.op('Greater', [x, b.scalar(3)]), b.scalar(1), mid]);
      const d = b.op('Where', [b.op('Less', [x, b.scalar(-3)]), b.scalar(0), upper]);
      return [b.op('Mul', [gy!, d], {}, `${n.name}:dHardSwish`)];
    },
  },

  Conv: {
    forward(c, n) {
      const [wName, bName] = n.params as [string, string | undefined];
      const tap = centreTap(c, n);
      if (tap) {
        const b = c.b;
        const [ch, out] = [c.shape(n.inputs[0]!)[1] as number, c.shape(n.outputs[0]!)[1] as number];
        const wc = b.op('Reshape', [b.op('Slice', [wName, b.ints(tap), b.ints([tap[0] + 1, tap[1] + 1]), b.ints([2, 3])]), b.ints([out, ch])], {}, `${n.name}:tap`);
        const x2 = b.op('Reshape', [n.inputs[0]!, b.ints([0, ch])]);
        const y = b.op('Gemm', bName ? [x2, wc, bName] : [x2, wc], { transB: 1 }, n.name);
        b.node('Reshape', [y, b.ints([0, out, 1, 1])], {}, n.name, n.outputs);
        c.saved.set(n, { wc, x2 });
        return;
      }
      // Constant (frozen) weights are left to ORT, which reorders them once at load. Convs on few input channels
      // (the RGB stem) stay standard: the stem's MaxPool routes gradients by argmax, so last-bit differences there
      // move whole gradient entries (grad fixtures at batch 2), and the stem is a small share of the step.
      const inCh = c.shape(n.inputs[0]!)[1] as number;
      if (c.o.nchwc && c.trainable(wName) && inCh >= c.o.nchwc) {
        const [kh, kw] = n.attrs['kernel_shape'] as number[];
        const spec = { x: n.inputs[0]!, w: wName, ...(bName ? { bias: bName } : {}), inCh, outCh: c.shape(n.outputs[0]!)[1] as number };
        const a = attrs(n);
        if (nchwcConv(c.b, { ...spec, group: (a['group'] as number) ?? 1, kh: kh!, kw: kw!, attrs: a, name: n.name, outputs: n.outputs }, c.o.nchwc)) return;
      }
      plain(c, n);
    },
    backward(c, n, [gy]) {
      const [x] = n.inputs as [string];
      const [wName, bName] = n.params as [string, string | undefined];
      const { ch, h, w, oh, ow, kh, kw, sh, sw, dh, dw, pads } = geometry(c, n);
      const group = (n.attrs['group'] as number) ?? 1;
      if (bName && c.trainable(bName)) c.addParamGrad(bName, c.b.op('ReduceSum', [gy!, c.b.ints(SPATIAL)], { keepdims: 0 }));
      const tap = centreTap(c, n);
      if (tap) {
        // The matrix product's rules; dW is the tap's [O, C] placed in the kernel, zeros elsewhere.
        const b = c.b;
        const { wc, x2 } = c.saved.get(n)! as { wc: string; x2: string };
        const out = c.shape(n.outputs[0]!)[1] as number;
        const g2 = b.op('Reshape', [gy!, b.ints([0, out])]);
        if (c.trainable(wName)) {
          // dyᵀ · (x ⊗ one-hot over the taps): the product writes the whole kernel, zeros included, in one pass
          // (ORT's Pad of [O, C, 1, 1] to 3×3 took 56–84 ms per conv, a broadcast Mul of the [O, C] result ~25).
          const hot = new Float32Array(kh * kw);
          hot[tap[0] * kw + tap[1]] = 1;
          const onehot = b.once(`tap:${kh}x${kw}:${tap.join(',')}`, () => b.constant(b.fresh('tap'), [1, 1, kh * kw], hot));
          const x9 = b.op('Reshape', [b.op('Mul', [b.op('Reshape', [x2, b.ints([0, ch, 1])]), onehot]), b.ints([0, ch * kh * kw])], {}, `${n.name}:dW`);
          c.addParamGrad(wName, b.op('Reshape', [b.op('Gemm', [g2, x9], { transA: 1 }, `${n.name}:dW`), b.ints([out, ch, kh, kw])]));
        }
        return [c.needs.has(x) ? b.op('Reshape', [b.op('Gemm', [g2, wc], {}, `${n.name}:dX`), b.ints([0, ch, 1, 1])]) : undefined];
      }
      const [, , hIn, wIn] = c.shape(x) as number[];
      const out0 = c.shape(n.outputs[0]!)[1] as number;
      const blockedDw =
        c.trainable(wName) && group === 1 && c.o.nchwc && c.o.nchwcWeightGrad !== false
          ? nchwcWeightGrad(c.b, { x, gy: gy!, inCh: ch, outCh: out0, kh, kw, oh, ow, strides: [sh, sw], dilations: [dh, dw], pads, name: `${n.name}:dW` }, c.o.nchwc)
          : undefined;
      if (blockedDw) {
        // [C, O, fh, fw] → [O, C, kh, kw] (fh > kh where the stride leaves rows no output reads).
        const fh = Math.floor((h + pads[0]! + pads[2]! - sh * (oh - 1) - 1) / dh) + 1;
        const fw = Math.floor((w + pads[1]! + pads[3]! - sw * (ow - 1) - 1) / dw) + 1;
        const cut = fh !== kh || fw !== kw ? c.b.op('Slice', [blockedDw, c.b.ints([0, 0]), c.b.ints([kh, kw]), c.b.ints([2, 3])]) : blockedDw;
        c.addParamGrad(wName, c.b.op('Transpose', [cut], { perm: [1, 0, 2, 3] }, `${n.name}:dW`));
      } else if (c.trainable(wName) && kh === 1 && kw === 1 && sh === 1 && sw === 1 && group === 1 && pads.every((q) => q === 0) && hIn! * wIn! >= 784) {
        // Large 1×1 convs: one batched product per sample, dy[n]·x[n]ᵀ (ORT fuses the transpose), summed over N:
        // 1.2–1.4× faster than one GEMM on transposed copies (bench/README.md, training).
        const out = c.shape(n.outputs[0]!)[1] as number;
        const xt = c.b.op('Transpose', [c.b.op('Reshape', [x, c.b.ints([0, ch, hIn! * wIn!])])], { perm: [0, 2, 1] });
        const prod = c.b.op('MatMul', [c.b.op('Reshape', [gy!, c.b.ints([0, out, hIn! * wIn!])]), xt], {}, `${n.name}:dW`);
        c.addParamGrad(wName, c.b.op('Reshape', [c.b.op('ReduceSum', [prod, c.b.ints([0])], { keepdims: 0 }), c.b.ints([out, ch, 1, 1])]));
      } else if (c.trainable(wName) && dwByGemm(group, ch, kh, kw)) {
        c.addParamGrad(wName, convWeightGradGemm(c, n, gy!));
      } else if (c.trainable(wName)) {
        // dW as one grouped conv: the batch becomes the channels. Input [C/g, g*N, H, W], "kernel" dy as
        // [O, N, oh, ow]; forward stride becomes dilation and forward dilation becomes stride.
        const cg = ch / group;
        const xt =
          group === 1
            ? c.b.op('Transpose', [x], { perm: [1, 0, 2, 3] })
            : c.b.op('Reshape', [c.b.op('Transpose', [c.b.op('Reshape', [x, c.b.ints([0, group, cg, h, w])])], { perm: [2, 1, 0, 3, 4] }), c.b.ints([cg, -1, h, w])]);
        const gt = c.b.op('Transpose', [gy!], { perm: [1, 0, 2, 3] });
        let dW = c.b.op('Conv', [xt, gt], { kernel_shape: [oh, ow], strides: [dh, dw], dilations: [sh, sw], pads, group }, `${n.name}:dW`);
        const fh = Math.floor((h + pads[0]! + pads[2]! - sh * (oh - 1) - 1) / dh) + 1;
        const fw = Math.floor((w + pads[1]! + pads[3]! - sw * (ow - 1) - 1) / dw) + 1;
        if (fh !== kh || fw !== kw) dW = c.b.op('Slice', [dW, c.b.ints([0, 0]), c.b.ints([kh, kw]), c.b.ints([2, 3])]);
        c.addParamGrad(wName, c.b.op('Transpose', [dW], { perm: [1, 0, 2, 3] }));
      }
      if (!c.needs.has(x)) return [undefined];
      if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && group === 1 && pads.every((q) => q === 0)) {
        // A 1×1 stride-1 conv is a matrix product per sample: dX[n] = Wᵀ·dy[n] (no col2im).
        const out = c.shape(n.outputs[0]!)[1] as number;
        const wt = c.b.op('Transpose', [c.b.op('Reshape', [wName, c.b.ints([out, ch])])], { perm: [1, 0] });
        const prod = c.b.op('MatMul', [wt, c.b.op('Reshape', [gy!, c.b.ints([0, out, h * w])])], {}, `${n.name}:dX`);
        return [c.b.op('Reshape', [prod, c.b.ints([0, ch, h, w])])];
      }
      if (sh === 1 && sw === 1 && dh === 1 && dw === 1) {
        // Stride 1: dX is a conv of dy with the spatially flipped, in/out-swapped kernel (im2col, not col2im).
        const out = c.shape(n.outputs[0]!)[1] as number;
        const og = out / group;
        const cg = ch / group;
        // [O, C/g, kh, kw] → per group [C/g, O/g, kh, kw] → [C, O/g, kh, kw], flipped in both spatial axes.
        const perGroup = c.b.op('Transpose', [c.b.op('Reshape', [wName, c.b.ints([group, og, cg, kh, kw])])], { perm: [0, 2, 1, 3, 4] });
        const swapped = c.b.op('Reshape', [perGroup, c.b.ints([ch, og, kh, kw])]);
        // Both spatial axes reversed = the flattened kh·kw axis reversed: a product with the anti-identity (exact:
        // one term ×1, the rest ×0), where ORT's Slice with negative steps took ~10× the weight reorder's time.
        const k = kh * kw;
        const anti = c.b.once(`anti:${k}`, () => c.b.constant(c.b.fresh('anti'), [k, k], Float32Array.from({ length: k * k }, (_, i) => (i % k === k - 1 - Math.floor(i / k) ? 1 : 0))));
        const flipped = k === 1 ? swapped : c.b.op('Reshape', [c.b.op('MatMul', [c.b.op('Reshape', [swapped, c.b.ints([-1, k])]), anti], {}, `${n.name}:dX`), c.b.ints([ch, og, kh, kw])]);
        const [pt, pl, pb, pr] = pads as [number, number, number, number];
        const a = { kernel_shape: [kh, kw], strides: [1, 1], dilations: [1, 1], pads: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr], group };
        const blocked = c.o.nchwc ? nchwcConv(c.b, { x: gy!, w: flipped, inCh: out, outCh: ch, group, kh, kw, attrs: a, name: `${n.name}:dX` }, c.o.nchwc) : undefined;
        return [blocked ?? c.b.op('Conv', [gy!, flipped], a, `${n.name}:dX`)];
      }
      // dX = ConvTranspose with the forward weight; output_padding restores the rows a stride dropped.
      const oph = h + pads[0]! + pads[2]! - (sh * (oh - 1) + dh * (kh - 1) + 1);
      const opw = w + pads[1]! + pads[3]! - (sw * (ow - 1) + dw * (kw - 1) + 1);
      return [
        c.b.op('ConvTranspose', [gy!, wName], { kernel_shape: [kh, kw], strides: [sh, sw], dilations: [dh, dw], pads, group, output_padding: [oph, opw] }, `${n.name}:dX`),
      ];
    },
  },

  BatchNormalization: {
    forward(c, n) {
      const [x] = n.inputs as [string];
      const [gamma, beta, mean, variance] = n.params as [string, string, string, string];
      const eps = n.attrs['epsilon'] as number;
      if (!c.o.bnTrain(n.name)) {
        c.b.node('BatchNormalization', [x, gamma, beta, mean, variance], { epsilon: eps }, n.name, n.outputs);
        return;
      }
      // Train mode: ONNX's fused BatchNormalization with momentum 0 and zero running inputs returns exactly the
      // batch mean and biased variance (what PyTorch normalizes with) as its running outputs; the host turns them
      // into running statistics with the unbiased variance and PyTorch's momentum.
      // ONNX Runtime writes the running outputs over the running inputs' buffers, so each input is its own
      // runtime zero vector (a shared or constant one would be overwritten by every BatchNorm).
      const zm = c.b.op('Sub', [gamma, gamma], {}, n.name);
      const zv = c.b.op('Sub', [beta, beta], {}, n.name);
      const m = c.b.fresh(`${n.name}:batch_mean`);
      const v = c.b.fresh(`${n.name}:batch_var`);
      c.b.node('BatchNormalization', [x, gamma, beta, zm, zv], { epsilon: eps, momentum: 0, training_mode: 1 }, n.name, [...n.outputs, m, v]);
      c.saved.set(n, { m, v });
    },
    backward(c, n, [gy]) {
      const [x] = n.inputs as [string];
      const [gamma, beta, runMean, runVar] = n.params as [string, string, string, string];
      const eps = n.attrs['epsilon'] as number;
      const [, ch, h, w] = c.shape(x) as [Dim, number, number, number];
      const b = c.b;
      const s = c.saved.get(n);
      const train = Boolean(s);
      const mean = s ? s['m']! : runMean;
      const variance = s ? s['v']! : runVar;
      const rstd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, b.scalar(eps)])])]);
      const needStats = train || c.trainable(gamma) || c.trainable(beta);
      // Σdy and Σdy·(x − mean) per channel; x − mean (not Σdy·x − mean·Σdy) keeps the sum free of cancellation.
      const xc = needStats && (train || c.trainable(gamma)) ? b.op('Sub', [x, c.channel(mean, ch)], {}, `${n.name}:dBN`) : '';
      const s1 = needStats ? b.op('ReduceSum', [gy!, b.ints(SPATIAL)], { keepdims: 0 }) : '';
      const s2 = xc ? b.op('ReduceSum', [b.op('Mul', [gy!, xc]), b.ints(SPATIAL)], { keepdims: 0 }) : '';
      const dgamma = s2 ? b.op('Mul', [s2, rstd]) : '';
      if (c.trainable(beta)) c.addParamGrad(beta, s1);
      if (c.trainable(gamma)) c.addParamGrad(gamma, dgamma);
      if (!c.needs.has(x)) return [undefined];
      const k = b.op('Mul', [gamma, rstd]);
      if (!train) return [b.op('Mul', [gy!, c.channel(k, ch)], {}, `${n.name}:dX`)];
      // dx = k·(dy − Σdy/M − x̂·Σ(dy·x̂)/M), x̂ = xc·rstd: k·dy + a·xc + c₀ with per-channel a = −k·rstd·dγ/M and
      // c₀ = −k·Σdy/M; k·dy + c₀ is one per-channel affine pass (an inference BatchNormalization).
      const invM = b.op('Mul', [c.invN(), b.scalar(1 / (h * w))]);
      const a = b.op('Neg', [b.op('Mul', [b.op('Mul', [k, rstd]), b.op('Mul', [dgamma, invM])])]);
      const c0 = b.op('Neg', [b.op('Mul', [k, b.op('Mul', [s1, invM])])]);
      const ones = b.once(`ones:${ch}`, () => b.constant(b.fresh('ones'), [ch], new Float32Array(ch).fill(1)));
      const zeros = b.once(`zeros:${ch}`, () => b.constant(b.fresh('zeros'), [ch], new Float32Array(ch)));
      const affine = b.op('BatchNormalization', [gy!, k, c0, zeros, ones], { epsilon: 0 }, `${n.name}:dX`);
      return [b.op('Add', [affine, b.op('Mul', [xc, c.channel(a, ch)])], {}, `${n.name}:dX`)];
    },
  },

  Relu: {
    forward: (c, n) => plain(c, n),
    // y ≥ 0, so sign(y) is the mask (1 where the unit is on, 0 where it is off): two float passes, no bool tensor.
    backward: (c, n, [gy]) => [c.b.op('Mul', [gy!, c.b.op('Sign', [n.outputs[0]!], {}, `${n.name}:dRelu`)], {}, `${n.name}:dRelu`)],
  },

  Sigmoid: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const y = n.outputs[0]!;
      return [c.b.op('Mul', [gy!, c.b.op('Mul', [y, c.b.op('Sub', [c.b.scalar(1), y])])])];
    },
  },

  SiLU: {
    forward(c, n) {
      const s = c.b.op('Sigmoid', [n.inputs[0]!], {}, n.name);
      c.b.node('Mul', [n.inputs[0]!, s], {}, n.name, n.outputs);
      c.saved.set(n, { s });
    },
    backward(c, n, [gy]) {
      // d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x)))
      const x = n.inputs[0]!;
      const s = c.saved.get(n)!['s']!;
      const b = c.b;
      const d = b.op('Mul', [s, b.op('Add', [b.scalar(1), b.op('Mul', [x, b.op('Sub', [b.scalar(1), s])])])]);
      return [b.op('Mul', [gy!, d])];
    },
  },

  Add: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const so = c.shape(n.outputs[0]!);
      return n.inputs.map((i) => (c.needs.has(i) ? c.reduceTo(gy!, so, c.shape(i)) : undefined));
    },
  },

  Mul: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const [a, b2] = n.inputs as [string, string];
      const so = c.shape(n.outputs[0]!);
      const da = c.needs.has(a) ? c.reduceTo(c.b.op('Mul', [gy!, b2]), so, c.shape(a)) : undefined;
      const db = c.needs.has(b2) ? c.reduceTo(c.b.op('Mul', [gy!, a]), so, c.shape(b2)) : undefined;
      return [da, db];
    },
  },

  MaxPool: {
    forward(c, n) {
      if (!c.needs.has(n.inputs[0]!)) return plain(c, n);
      // The Indices output (flat over N·C·H·W) routes each gradient to its window's maximum.
      const idx = c.b.fresh(`${n.name}:indices`);
      c.b.node('MaxPool', n.inputs, attrs(n), n.name, [...n.outputs, idx]);
      c.saved.set(n, { idx });
    },
    backward(c, n, [gy]) {
      const x = n.inputs[0]!;
      const b = c.b;
      const flat = b.ints([-1]);
      const zeros = b.op('Reshape', [c.zerosLike(x), flat]);
      const idx = b.op('Reshape', [c.saved.get(n)!['idx']!, flat]);
      const dx = b.op('ScatterElements', [zeros, idx, b.op('Reshape', [gy!, flat])], { axis: 0, reduction: 'add' }, `${n.name}:dX`);
      return [b.op('Reshape', [dx, c.shapeOf(x)])];
    },
  },

  AveragePool: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const { ch, h, w, oh, ow, kh, kw, sh, sw, pads } = geometry(c, n);
      const include = n.attrs['count_include_pad'] === 1;
      const [pt, pl, pb, pr] = pads as [number, number, number, number];
      // Divisor of each output window, as PyTorch computes it (window clipped to the padded or the real input).
      const count = new Float32Array(oh * ow);
      let uniform = true;
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const hs = i * sh - pt;
          const ws = j * sw - pl;
          const rows = include ? Math.min(hs + kh, h + pb) - hs : Math.min(hs + kh, h) - Math.max(hs, 0);
          const cols = include ? Math.min(ws + kw, w + pr) - ws : Math.min(ws + kw, w) - Math.max(ws, 0);
          count[i * ow + j] = 1 / (rows * cols);
          if (rows * cols !== kh * kw) uniform = false;
        }
      }
      const b = c.b;
      const scaled = uniform
        ? b.op('Mul', [gy!, b.scalar(1 / (kh * kw))])
        : b.op('Mul', [gy!, b.constant(b.fresh(`${n.name}:inv_count`), [1, 1, oh, ow], count)]);
      const ones = b.once(`ones:${ch}x${kh}x${kw}`, () => b.constant(b.fresh('ones'), [ch, 1, kh, kw], new Float32Array(ch * kh * kw).fill(1)));
      const full = b.op('ConvTranspose', [scaled, ones], { kernel_shape: [kh, kw], strides: [sh, sw], group: ch }, `${n.name}:dX`);
      return [cropTo(c, full, sh * (oh - 1) + kh, sw * (ow - 1) + kw, pt, pl, h, w)];
    },
  },

  GlobalAveragePool: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const [, , h, w] = c.shape(n.inputs[0]!) as number[];
      return [c.b.op('Expand', [c.b.op('Mul', [gy!, c.b.scalar(1 / (h! * w!))]), c.shapeOf(n.inputs[0]!)])];
    },
  },

  Concat: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const axis = n.attrs['axis'] as number;
      const sizes = n.inputs.map((i) => c.shape(i)[axis] as number);
      const parts = c.b.node('Split', [gy!, c.b.ints(sizes)], { axis }, `${n.name}:dConcat`, sizes.length);
      return n.inputs.map((i, k) => (c.needs.has(i) ? parts[k] : undefined));
    },
  },

  Split: {
    forward: (c, n) => c.b.node('Split', [n.inputs[0]!, c.b.ints(n.attrs['split'] as number[])], { axis: n.attrs['axis'] as number }, n.name, n.outputs),
    backward(c, n, gys) {
      const parts = n.outputs.map((o, k) => gys[k] ?? c.zerosLike(o));
      return [c.b.op('Concat', parts, { axis: n.attrs['axis'] as number })];
    },
  },

  Reshape: {
    forward: (c, n) => c.b.node('Reshape', [n.inputs[0]!, c.b.ints(n.attrs['shape'] as number[])], {}, n.name, n.outputs),
    backward: (c, n, [gy]) => [c.b.op('Reshape', [gy!, c.shapeOf(n.inputs[0]!)])],
  },

  Flatten: {
    forward: (c, n) => plain(c, n),
    backward: (c, n, [gy]) => [c.b.op('Reshape', [gy!, c.shapeOf(n.inputs[0]!)])],
  },

  Transpose: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const perm = n.attrs['perm'] as number[];
      const inv = perm.map((_, i) => perm.indexOf(i));
      return [c.b.op('Transpose', [gy!], { perm: inv })];
    },
  },

  Softmax: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const y = n.outputs[0]!;
      const axis = n.attrs['axis'] as number;
      const b = c.b;
      const dot = b.op('ReduceSum', [b.op('Mul', [gy!, y]), b.ints([axis])], { keepdims: 1 });
      return [b.op('Mul', [y, b.op('Sub', [gy!, dot])])];
    },
  },

  ReduceSum: {
    forward: (c, n) => c.b.node('ReduceSum', [n.inputs[0]!, c.b.ints(n.attrs['axes'] as number[])], { keepdims: n.attrs['keepdims'] as number }, n.name, n.outputs),
    backward: (c, n, [gy]) => [c.b.op('Expand', [gy!, c.shapeOf(n.inputs[0]!)])],
  },

  Pad: {
    forward(c, n) {
      const [t, l, bo, r] = n.attrs['pads'] as number[];
      c.b.node('Pad', [n.inputs[0]!, c.b.ints([0, 0, t!, l!, 0, 0, bo!, r!])], {}, n.name, n.outputs);
    },
    backward(c, n, [gy]) {
      const [t, l] = n.attrs['pads'] as number[];
      const [, , h, w] = c.shape(n.inputs[0]!) as number[];
      return [c.b.op('Slice', [gy!, c.b.ints([t!, l!]), c.b.ints([t! + h!, l! + w!]), c.b.ints([2, 3])])];
    },
  },

  Gemm: {
    forward: (c, n) => plain(c, n),
    backward(c, n, [gy]) {
      const [x] = n.inputs as [string];
      const [wName, bName] = n.params as [string, string];
      if (c.trainable(wName)) c.addParamGrad(wName, c.b.op('Gemm', [gy!, x], { transA: 1 }, `${n.name}:dW`));
      if (c.trainable(bName)) c.addParamGrad(bName, c.b.op('ReduceSum', [gy!, c.b.ints([0])], { keepdims: 0 }));
      return [c.needs.has(x) ? c.b.op('Gemm', [gy!, wName], {}, `${n.name}:dX`) : undefined];
    },
  },

  ...MODERN_RULES,
};

/** Build the training graph of `graph` (its `logits` output) with the loss and every trainable gradient. */
export function buildTrainGraph(graph: Graph, o: TrainGraphOptions): TrainGraph {
  const c = new Ctx(graph, o);
  const b = c.b;
  const x = graph.inputs[0]!;
  const inputShape = graph.shape(x);
  b.input(x, inputShape);

  // Which values depend on a trainable parameter (and so need a gradient).
  for (const n of graph.nodes) {
    if (n.params.some((p) => o.trainable.has(p)) || n.inputs.some((i) => c.needs.has(i))) for (const out of n.outputs) c.needs.add(out);
  }
  const paramInputs: string[] = [];
  const paramShapes: Record<string, number[]> = {};
  const used = new Set(graph.nodes.flatMap((n) => n.params));
  // Running statistics of train-mode BatchNorms are not read by the graph (the host updates them).
  const train = new Set(graph.nodes.filter((n) => n.op === 'BatchNormalization' && o.bnTrain(n.name)).flatMap((n) => n.params.slice(2)));
  for (const p of graph.paramList()) {
    if (o.trainable.has(p.name) && used.has(p.name)) {
      b.input(p.name, p.shape);
      paramInputs.push(p.name);
      paramShapes[p.name] = p.shape;
    } else if (used.has(p.name) && !(train.has(p.name) && (p.role === 'bn_mean' || p.role === 'bn_var'))) {
      const w = o.weights.get(p.name);
      if (!w) throw new Error(`missing weight ${p.name}`);
      b.constant(p.name, p.shape, w);
    }
  }

  const bnStats: BnStatSpec[] = [];
  for (const n of graph.nodes) {
    const rule = RULES[n.op];
    if (!rule) throw new Error(`no backward rule for ${n.op} (${n.name})`);
    rule.forward(c, n);
    const s = c.saved.get(n);
    if (n.op === 'BatchNormalization' && s?.['m']) {
      const ch = graph.shape(n.inputs[0]!)[1] as number;
      const [, , h, w] = graph.shape(n.inputs[0]!) as number[];
      const mean = b.output(`bn_mean:${n.name}`, [ch]);
      const variance = b.output(`bn_var:${n.name}`, [ch]);
      b.node('Reshape', [s['m']!, b.ints([ch])], {}, n.name, [mean]);
      b.node('Reshape', [s['v']!, b.ints([ch])], {}, n.name, [variance]);
      bnStats.push({ path: n.name, mean, var: variance, spatial: h! * w! });
    }
  }

  const logits = 'logits';
  if (!graph.outputs.includes(logits)) throw new Error('the model has no logits output (features-only models cannot be trained yet)');
  const numClasses = graph.shape(logits)[1] as number;
  const loss = buildLoss(b, logits, numClasses, o.loss, c.invN());
  b.output(logits, ['N', numClasses]);
  for (const v of o.extraOutputs ?? []) b.output(v, graph.shape(v));

  // Reverse pass.
  c.addGrad(logits, loss.dLogits);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (!n.outputs.some((v) => c.needs.has(v))) continue;
    const gys = n.outputs.map((v) => c.grad(v));
    if (gys.every((gy) => gy === undefined)) continue;
    const rule = RULES[n.op]!;
    const gx = rule.backward(c, n, gys);
    n.inputs.forEach((inp, k) => c.addGrad(inp, gx[k]));
  }

  const gradOutputs: Record<string, string> = {};
  for (const p of paramInputs) {
    const list = c.paramGrads.get(p);
    const name = `grad:${p}`;
    const shape = graph.params.get(p)!.shape;
    if (!list) {
      // A trainable parameter the loss does not reach (e.g. behind a frozen-only path): zero gradient.
      b.constant(name, shape, new Float32Array(numel(shape)));
      b.node('Identity', [name], {}, '', [`${name}:out`]);
      b.output(`${name}:out`, shape);
      gradOutputs[p] = `${name}:out`;
      continue;
    }
    const total = list.reduce((s, t) => b.op('Add', [s, t]));
    b.node('Identity', [total], {}, '', [name]);
    b.output(name, shape);
    gradOutputs[p] = name;
  }

  return {
    ...(c.masks.length ? { masks: c.masks } : {}),
    bytes: b.encode({ 'tsimm.train': JSON.stringify({ loss: o.loss }) }),
    paramInputs,
    paramShapes,
    gradOutputs,
    bnStats,
    inputs: { x, targets: loss.targets, ...(loss.teacher ? { teacher: loss.teacher } : {}) },
    lossTerms: loss.terms,
    inputShape,
    numClasses,
  };
}

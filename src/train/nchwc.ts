/**
 * Convolutions of a training graph on ONNX Runtime's blocked-layout CPU kernels (`com.microsoft.nchwc`: channels
 * in blocks of 8 (AVX2) or 16 (AVX-512), MLAS's direct conv kernels). ORT rewrites convs to them only when the
 * weights are constants; training feeds its weights, so the graph reorders them itself each step (a Reshape +
 * Transpose of the weight, cheap next to the conv) and calls the blocked Conv between ReorderInput/ReorderOutput.
 * Same arithmetic as ORT's inference path for these layers; onnxruntime-web has no such ops, so only the Node
 * trainer asks for this, after probing the block size (src/train/trainer.ts).
 */
import type { OnnxBuilder } from './onnx-builder.js';

export const NCHWC = 'com.microsoft.nchwc';

export interface ConvSpec {
  x: string;
  w: string;
  bias?: string;
  /** Input channels (all groups), output channels, group, kernel. */
  inCh: number;
  outCh: number;
  group: number;
  kh: number;
  kw: number;
  attrs: Record<string, number | number[]>;
  name: string;
  outputs?: string[];
}

/**
 * Which blocked form a conv takes, or undefined where ORT has none: `full` (input reordered, filter
 * [O/B, I/B, kh, kw, Bi, Bo]), `nchw` (few input channels read in NCHW, filter [O/B, I, kh, kw, Bo]: the RGB
 * stem) and `depthwise` (input reordered, filter [C/B, 1, kh, kw, Bo]); ORT's NchwcTransformer's rules.
 */
export function nchwcForm(s: Pick<ConvSpec, 'inCh' | 'outCh' | 'group'>, block: number): 'full' | 'nchw' | 'depthwise' | undefined {
  if (!block || s.outCh % block !== 0) return undefined;
  if (s.group === 1) return s.inCh % block === 0 ? 'full' : s.inCh < block ? 'nchw' : undefined;
  if (s.group === s.inCh && s.outCh === s.inCh) return 'depthwise';
  return undefined;
}

/** The conv on blocked kernels with NCHW input and output; undefined (nothing emitted) where no form applies. */
export function nchwcConv(b: OnnxBuilder, s: ConvSpec, block: number): string | undefined {
  const form = nchwcForm(s, block);
  if (!form) return undefined;
  const ci = s.inCh / s.group;
  const { kh, kw, outCh: o } = s;
  const w = reorderFilter(b, s.w, form, o, ci, kh, kw, block, s.name);
  const x = form === 'nchw' ? s.x : b.opIn(NCHWC, 'ReorderInput', [s.x], {}, s.name);
  const y = b.opIn(NCHWC, 'Conv', s.bias ? [x, w, s.bias] : [x, w], { ...s.attrs, kernel_shape: [kh, kw], group: s.group }, s.name);
  return b.opIn(NCHWC, 'ReorderOutput', [y], { channels: o }, s.name, s.outputs);
}

/**
 * A filter [O, I, kh, kw] (I may be unknown, -1) in the blocked layout of `form`, as two batched 2-D transposes
 * (ORT moves a single axis quickly; its general 6-D transpose is ~10× slower): [O/B, Bo, I·kh·kw] →
 * [O/B, I·kh·kw, Bo], then for `full` [O/B·I/B, Bi, kh·kw, Bo] → [O/B·I/B, kh·kw, Bi, Bo].
 */
function reorderFilter(b: OnnxBuilder, w: string, form: 'full' | 'nchw' | 'depthwise', o: number, ci: number, kh: number, kw: number, block: number, name: string): string {
  const k = kh * kw;
  let wr = b.op('Transpose', [b.op('Reshape', [w, b.ints([o / block, block, ci < 0 ? -1 : ci * k])])], { perm: [0, 2, 1] }, `${name}:nchwcW`);
  if (form === 'full') wr = b.op('Transpose', [b.op('Reshape', [wr, b.ints([-1, block, k, block])])], { perm: [0, 2, 1, 3] }, `${name}:nchwcW`);
  return b.op('Reshape', [wr, b.ints([o, ci, kh, kw])]);
}

export interface WeightGradSpec {
  x: string;
  gy: string;
  inCh: number;
  outCh: number;
  kh: number;
  kw: number;
  /** dy's spatial extent. */
  oh: number;
  ow: number;
  strides: number[];
  dilations: number[];
  pads: number[];
  name: string;
}

/**
 * dW of a group-1 conv as one blocked conv over the batch: input xᵀ [C, N, H, W] (N as channels), "filter"
 * dyᵀ [O, N, oh, ow], output [C, O, ≥kh, ≥kw]; the forward stride becomes the dilation and the forward dilation
 * the stride. MLAS's direct blocked kernel reads the windows in place, where the per-tap GEMMs need a strided copy
 * of x per tap. N is padded with zero samples to whole blocks (they add nothing to the sum). Undefined where the
 * output channels are not whole blocks or dy's map is larger than 8×8.
 */
export function nchwcWeightGrad(b: OnnxBuilder, s: WeightGradSpec, block: number): string | undefined {
  // Measured per layer (bench/README.md, training): 1.5–3× faster than the per-tap GEMMs up to 8×8 maps (resnet18
  // at 32 px, batch 64), 1.1–8× slower from 14×14 up (224 px, batch 16), where the big kernel's reads dominate.
  if (!block || s.outCh % block !== 0 || s.oh * s.ow > 64) return undefined;
  // Every x and dy of the graph has the same batch, so one padding vector serves all.
  const padN = b.once('nchwc:padN', () => {
    const n = b.op('Shape', [s.x], { start: 0, end: 1 });
    const bb = b.ints([block]);
    const pad = b.op('Mod', [b.op('Sub', [bb, b.op('Mod', [n, bb])]), bb]);
    return b.op('Concat', [b.ints([0, 0, 0, 0]), pad, b.ints([0, 0, 0])], { axis: 0 });
  });
  const byBatch = (v: string) => b.op('Transpose', [b.op('Pad', [v, padN], {}, `${s.name}:nchwcPad`)], { perm: [1, 0, 2, 3] }, s.name);
  const x = b.opIn(NCHWC, 'ReorderInput', [byBatch(s.x)], {}, s.name);
  const f = reorderFilter(b, byBatch(s.gy), 'full', s.outCh, -1, s.oh, s.ow, block, s.name);
  const attrs = { kernel_shape: [s.oh, s.ow], strides: s.dilations, dilations: s.strides, pads: s.pads, group: 1 };
  const y = b.opIn(NCHWC, 'ReorderOutput', [b.opIn(NCHWC, 'Conv', [x, f], attrs, s.name)], { channels: s.outCh }, s.name);
  return y;
}

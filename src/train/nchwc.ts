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
  // Two batched 2-D transposes (ORT moves a single axis quickly; its general 6-D transpose is ~10× slower):
  // [O/B, Bo, I·kh·kw] → [O/B, I·kh·kw, Bo], then for `full` [O/B·I/B, Bi, kh·kw, Bo] → [O/B·I/B, kh·kw, Bi, Bo].
  const k = kh * kw;
  let wr = b.op('Transpose', [b.op('Reshape', [s.w, b.ints([o / block, block, ci * k])])], { perm: [0, 2, 1] }, `${s.name}:nchwcW`);
  if (form === 'full') wr = b.op('Transpose', [b.op('Reshape', [wr, b.ints([(o / block) * (ci / block), block, k, block])])], { perm: [0, 2, 1, 3] }, `${s.name}:nchwcW`);
  const w = b.op('Reshape', [wr, b.ints([o, ci, kh, kw])]);
  const x = form === 'nchw' ? s.x : b.opIn(NCHWC, 'ReorderInput', [s.x], {}, s.name);
  const y = b.opIn(NCHWC, 'Conv', s.bias ? [x, w, s.bias] : [x, w], { ...s.attrs, kernel_shape: [kh, kw], group: s.group }, s.name);
  return b.opIn(NCHWC, 'ReorderOutput', [y], { channels: o }, s.name, s.outputs);
}

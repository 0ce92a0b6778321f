/**
 * The one builder behind EfficientNet, EfficientNetV2 and MobileNetV3 (timm's _efficientnet_builder.py and
 * _efficientnet_blocks.py): an architecture is timm's arch-definition strings (`ir_r2_k3_s2_e6_c24_se0.25`),
 * decoded here as data, plus a few model-level choices (stem, head, activation, SE rounding, padding).
 *
 * Blocks: `ds` depthwise-separable, `ir` inverted residual (MBConv), `er` edge residual (FusedMBConv), `cn`
 * conv-BN-act. Widths go through round_channels (make_divisible by 8 with a round limit), repeats through
 * timm's per-stage depth scaling (ceil, spread over the stage's block strings from the last one back).
 */
import { Graph } from '../ir/graph.js';
import { activate, classifierHead, convBnAct, dropPathSchedule, makeDivisible, squeezeExcite, type Activation } from '../layers/common.js';
import { roundHalfEven } from '../math.js';
import type { BuildOptions } from './types.js';

export type BlockType = 'ds' | 'dsa' | 'ir' | 'er' | 'cn';

export interface BlockArgs {
  type: BlockType;
  out: number;
  stride: number;
  kernel: number;
  /** Expansion ratio (1 for ds/cn). */
  exp: number;
  /** SE ratio (0: no SE). */
  se: number;
  /** Per-block activation override (`_nre` relu, `_nhs` hard_swish, `_nsw` silu). */
  act?: Activation;
  /** No residual even when the shapes allow one (`_noskip`, and every `dsa`). */
  noskip: boolean;
  /** `cn` blocks take a residual only when asked (`_skip`). */
  skip: boolean;
}

const ACTS: Record<string, Activation> = { re: 'relu', hs: 'hard_swish', sw: 'silu' };

/** One timm block string → its arguments and repeat count. */
export function decodeBlock(def: string): { args: BlockArgs; repeats: number } {
  const [type, ...ops] = def.split('_') as [string, ...string[]];
  if (!['ds', 'dsa', 'ir', 'er', 'cn'].includes(type)) throw new Error(`unknown block type ${type} in ${def}`);
  const opt: Record<string, string> = {};
  let skip: boolean | undefined;
  let act: Activation | undefined;
  for (const op of ops) {
    if (op === 'noskip') skip = false;
    else if (op === 'skip') skip = true;
    else if (op.startsWith('n')) act = ACTS[op.slice(1)] ?? act;
    else {
      const m = /^([a-z]+)(\d.*)$/.exec(op);
      if (m) opt[m[1]!] = m[2]!;
    }
  }
  const num = (k: string, d: number) => (opt[k] !== undefined ? Number(opt[k]) : d);
  const args: BlockArgs = {
    type: type as BlockType,
    out: num('c', NaN),
    stride: num('s', 1),
    kernel: num('k', 3),
    exp: type === 'ir' || type === 'er' ? num('e', 1) : 1,
    se: type === 'cn' ? 0 : num('se', 0),
    act,
    noskip: type === 'dsa' || skip === false,
    skip: skip === true,
  };
  return { args, repeats: num('r', 1) };
}

/** timm's _scale_stage_depth (ceil): the stage's total repeats scaled, handed out from the last string back. */
function scaleStage(blocks: { args: BlockArgs; repeats: number }[], mult: number): BlockArgs[] {
  let total = blocks.reduce((s, b) => s + b.repeats, 0);
  let scaled = Math.ceil(total * mult);
  const reps: number[] = [];
  for (const b of [...blocks].reverse()) {
    const r = Math.max(1, roundHalfEven((b.repeats / total) * scaled));
    reps.unshift(r);
    total -= b.repeats;
    scaled -= r;
  }
  return blocks.flatMap((b, i) => Array.from({ length: reps[i]! }, () => ({ ...b.args })));
}

export function decodeArch(def: string[][], depth: number | number[] = 1): BlockArgs[][] {
  return def.map((stage, i) => scaleStage(stage.map(decodeBlock), typeof depth === 'number' ? depth : depth[i]!));
}

export interface SeSpec {
  /** Reduced width from the expanded (mid) channels (MobileNetV3) or from the block input (EfficientNet). */
  fromExp: boolean;
  /** 'round': Python round; 'divisible': round_channels (make_divisible 8); 'paddle': ⌊C_in/4⌋. */
  round: 'round' | 'divisible' | 'paddle';
  gate: 'sigmoid' | 'hard_sigmoid';
  /** Forced SE activation (MobileNetV3: relu); default the block's. */
  act?: Activation;
}

export interface EffNetArch {
  def: string[][];
  width: number;
  depth: number | number[];
  /** round_channels' round_limit (0.9; tf_efficientnetv2_b*: 0). */
  roundLimit?: number;
  stem: number;
  /** Stem width not scaled (MobileNetV3 below x0.75). */
  fixStem?: boolean;
  /** Head width as timm passes it (already scaled where timm scales it). */
  numFeatures: number;
  act: Activation;
  padding: 'same' | 'symmetric';
  eps: number;
  se: SeSpec | 'none';
  /** 'efficientnet': conv_head → bn2 → act → pool; 'mobilenetv3': pool → conv_head (bias) → act2, no norm. */
  head: 'efficientnet' | 'mobilenetv3';
}

/** TF "SAME": output ceil(H/s); the odd pixel of padding goes bottom/right. */
export function samePads(h: number, w: number, k: number, s: number): [number, number, number, number] {
  const total = (size: number) => Math.max((Math.ceil(size / s) - 1) * s + k - size, 0);
  const th = total(h);
  const tw = total(w);
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}

export const roundChannels = (a: Pick<EffNetArch, 'width' | 'roundLimit'>, c: number): number => makeDivisible(c * a.width, 8, undefined, a.roundLimit ?? 0.9);

export function buildEffNet(a: EffNetArch, o: BuildOptions): Graph {
  const g = new Graph();
  const conv = (x: string, convPath: string, bnPath: string, out: number, kernel: number, stride: number, groups: number, act: Activation) => {
    const s = g.shape(x);
    const pad = a.padding === 'same' ? samePads(s[2] as number, s[3] as number, kernel, stride) : undefined;
    return convBnAct(g, x, convPath, bnPath, { out, kernel, stride, groups, pad }, act, a.eps);
  };
  const stages = decodeArch(a.def, a.depth);
  let x = g.input('input', ['N', o.inChans, o.inputSize[0], o.inputSize[1]]);
  const stem = a.fixStem ? a.stem : roundChannels(a, a.stem);
  x = conv(x, 'conv_stem', 'bn1', stem, 3, 2, 1, a.act);
  if (stages[0]![0]!.stride > 1) g.markFeature(x, 'bn1');
  let c = stem;
  const count = stages.reduce((s, st) => s + st.length, 0);
  let index = 0;
  stages.forEach((blocks, si) => {
    blocks.forEach((ba, j) => {
      const p = `blocks.${si}.${j}`;
      const stride = j === 0 ? ba.stride : 1;
      const out = roundChannels(a, ba.out);
      const act = ba.act ?? a.act;
      const se = (y: string, mid: number) => {
        if (!ba.se || a.se === 'none') return y;
        const s = a.se;
        const ratio = s.fromExp ? ba.se : ba.se / ba.exp;
        const rd = s.round === 'paddle' ? Math.max(1, Math.floor(c * 0.25)) : s.round === 'divisible' ? makeDivisible(mid * ratio, 8) : roundHalfEven(mid * ratio);
        return squeezeExcite(g, y, `${p}.se`, rd, { reduce: 'conv_reduce', expand: 'conv_expand' }, s.act ?? act, s.gate);
      };
      let y = x;
      let residual = stride === 1 && c === out && !ba.noskip;
      if (ba.type === 'ds' || ba.type === 'dsa') {
        y = se(conv(y, `${p}.conv_dw`, `${p}.bn1`, c, ba.kernel, stride, c, act), c);
        y = conv(y, `${p}.conv_pw`, `${p}.bn2`, out, 1, 1, 1, ba.type === 'dsa' ? act : 'none');
      } else if (ba.type === 'ir') {
        const mid = makeDivisible(c * ba.exp);
        y = conv(y, `${p}.conv_pw`, `${p}.bn1`, mid, 1, 1, 1, act);
        y = se(conv(y, `${p}.conv_dw`, `${p}.bn2`, mid, ba.kernel, stride, mid, act), mid);
        y = conv(y, `${p}.conv_pwl`, `${p}.bn3`, out, 1, 1, 1, 'none');
      } else if (ba.type === 'er') {
        const mid = makeDivisible(c * ba.exp);
        y = se(conv(y, `${p}.conv_exp`, `${p}.bn1`, mid, ba.kernel, stride, 1, act), mid);
        y = conv(y, `${p}.conv_pwl`, `${p}.bn2`, out, 1, 1, 1, 'none');
      } else {
        y = conv(y, `${p}.conv`, `${p}.bn1`, out, ba.kernel, stride, 1, act);
        residual = residual && ba.skip;
      }
      x = residual ? g.addTensors(g.dropPath(y, dropPathSchedule(o.dropPathRate, index, count), `${p}.drop_path`), x, p) : y;
      c = out;
      index++;
    });
    g.markFeature(x, `blocks.${si}`);
  });
  if (a.head === 'efficientnet') {
    classifierHead(g, conv(x, 'conv_head', 'bn2', a.numFeatures, 1, 1, 1, a.act), 'classifier', o.numClasses, o.dropRate);
  } else {
    // MobileNetV3's efficient head: pooled first, then a 1×1 conv with bias and no norm.
    x = g.globalAvgPool(x, 'global_pool');
    x = activate(g, g.conv(x, 'conv_head', { out: a.numFeatures, kernel: 1, bias: true }), a.act, 'act2');
    const features = g.output(g.flatten(x, 'flatten'), 'features');
    g.output(g.linear(g.dropout(features, o.dropRate ?? 0, 'head_drop'), 'classifier', o.numClasses), 'logits');
  }
  return g;
}

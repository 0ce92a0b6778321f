/**
 * PaddleClas' MobileNetV3 (ppcls legendary_models/mobilenet_v3.py). Its own architecture, not a timm alias: the
 * table gives absolute mid widths (scaled then made divisible by 8), the large net's first block has an expand
 * conv, SE is ⌊C/4⌋ wide with a hard-sigmoid of slope 0.2, and the head conv has no bias. Parameters take the
 * timm MobileNetV3 names of the same layers (stages grouped as timm groups them; the 960/576 conv is the last
 * stage's `cn` block); the `paddle-mobilenetv3` key map reads the .pdparams.
 */
import { Graph } from '../ir/graph.js';
import { activate, convBnAct, makeDivisible, squeezeExcite, type Activation } from '../layers/common.js';
import { paddleCfg } from './cfg.js';
import { register } from './registry.js';
import type { BuildOptions } from './types.js';

/** [kernel, mid, out, se, act, stride] per block, as PaddleClas' NET_CONFIG. */
type Row = [number, number, number, boolean, 'relu' | 'hard_swish', number];
const R = 'relu';
const H = 'hard_swish';
export const PADDLE_MNV3: Record<'large' | 'small', { rows: Row[]; stages: number[]; squeeze: number }> = {
  large: {
    rows: [
      [3, 16, 16, false, R, 1], [3, 64, 24, false, R, 2], [3, 72, 24, false, R, 1], [5, 72, 40, true, R, 2], [5, 120, 40, true, R, 1],
      [5, 120, 40, true, R, 1], [3, 240, 80, false, H, 2], [3, 200, 80, false, H, 1], [3, 184, 80, false, H, 1], [3, 184, 80, false, H, 1],
      [3, 480, 112, true, H, 1], [3, 672, 112, true, H, 1], [5, 672, 160, true, H, 2], [5, 960, 160, true, H, 1], [5, 960, 160, true, H, 1],
    ],
    stages: [1, 2, 3, 4, 2, 3],
    squeeze: 960,
  },
  small: {
    rows: [
      [3, 16, 16, true, R, 2], [3, 72, 24, false, R, 2], [3, 88, 24, false, R, 1], [5, 96, 40, true, H, 2], [5, 240, 40, true, H, 1],
      [5, 240, 40, true, H, 1], [5, 120, 48, true, H, 1], [5, 144, 48, true, H, 1], [5, 288, 96, true, H, 2], [5, 576, 96, true, H, 1],
      [5, 576, 96, true, H, 1],
    ],
    stages: [1, 2, 3, 2, 3],
    squeeze: 576,
  },
};

/** Our (timm-style) block path of PaddleClas' flat block index. */
export function paddleBlockPath(stages: number[], i: number): string {
  let s = 0;
  while (i >= stages[s]!) i -= stages[s++]!;
  return `blocks.${s}.${i}`;
}

export function buildPaddleMobileNetV3(kind: 'large' | 'small', scale: number, o: BuildOptions): Graph {
  const { rows, stages, squeeze } = PADDLE_MNV3[kind];
  const g = new Graph();
  const cba = (x: string, conv: string, bn: string, out: number, kernel: number, stride: number, groups: number, act: Activation) =>
    convBnAct(g, x, conv, bn, { out, kernel, stride, groups }, act);
  let x = g.input('input', ['N', o.inChans, o.inputSize[0], o.inputSize[1]]);
  let c = makeDivisible(16 * scale);
  x = cba(x, 'conv_stem', 'bn1', c, 3, 2, 1, 'hard_swish');
  if (rows[0]![5] > 1) g.markFeature(x, 'bn1');
  rows.forEach(([k, exp, out0, se, act, stride], i) => {
    const p = paddleBlockPath(stages, i);
    const mid = makeDivisible(scale * exp);
    const out = makeDivisible(scale * out0);
    let y = cba(x, `${p}.conv_pw`, `${p}.bn1`, mid, 1, 1, 1, act);
    y = cba(y, `${p}.conv_dw`, `${p}.bn2`, mid, k, stride, mid, act);
    if (se) y = squeezeExcite(g, y, `${p}.se`, Math.floor(mid / 4), { reduce: 'conv_reduce', expand: 'conv_expand' }, 'relu', 'hard_sigmoid', 0.2);
    y = cba(y, `${p}.conv_pwl`, `${p}.bn3`, out, 1, 1, 1, 'none');
    x = stride === 1 && c === out ? g.addTensors(y, x, p) : y;
    c = out;
    const [, si, j] = p.split('.').map(Number) as [number, number, number];
    if (j === stages[si]! - 1) g.markFeature(x, `blocks.${si}`);
  });
  const last = `blocks.${stages.length}.0`;
  x = g.markFeature(cba(x, `${last}.conv`, `${last}.bn1`, makeDivisible(scale * squeeze), 1, 1, 1, 'hard_swish'), `blocks.${stages.length}`);
  x = activate(g, g.conv(g.globalAvgPool(x, 'global_pool'), 'conv_head', { out: 1280, kernel: 1 }), 'hard_swish', 'act2');
  const features = g.output(g.flatten(x, 'flatten'), 'features');
  g.output(g.linear(g.dropout(features, o.dropRate ?? 0, 'head_drop'), 'classifier', o.numClasses), 'logits');
  return g;
}

const SCALES: [string, number][] = [['x0_35', 0.35], ['x0_5', 0.5], ['x0_75', 0.75], ['x1_0', 1.0], ['x1_25', 1.25]];
for (const kind of ['large', 'small'] as const) {
  for (const [suffix, scale] of SCALES) {
    const name = `MobileNetV3_${kind}_${suffix}`;
    register({
      name,
      family: 'mobilenetv3',
      source: 'paddleclas',
      arch: name,
      build: (o) => buildPaddleMobileNetV3(kind, scale, o),
      cfgs: [paddleCfg(name, { file: `dygraph/${name}_pretrained.pdparams`, keys: 'paddle-mobilenetv3', firstConv: 'conv_stem', classifier: 'classifier' })],
      aliases: [],
      description: `PaddleClas MobileNetV3-${kind} x${scale}: SE ⌊C/4⌋ with hard-sigmoid slope 0.2, head conv without bias`,
    });
  }
}

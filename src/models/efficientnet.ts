/**
 * EfficientNet B0–B7 from one stage table and the compound-scaling rule (spec §4): widths × w rounded to
 * multiples of 8 (timm make_divisible), repeats × d rounded up; MBConv blocks with SE (width from the block
 * input, C_in/4) and SiLU. Two padding schemes: symmetric (timm `efficientnet_*`, Paddle B0_small) and
 * TensorFlow "SAME" (timm `tf_efficientnet_*`, Paddle B0–B7), computed from the actual input size.
 */
import type { Graph } from '../ir/graph.js';
import { buildEffNet, roundChannels, type EffNetArch } from './effnet-builder.js';
import { paddleCfg, timmCfg, TIMM_RELEASES } from './cfg.js';
import { register } from './registry.js';
import { INCEPTION_MEAN, INCEPTION_STD, type BuildOptions, type PretrainedCfg } from './types.js';

// ---------------------------------------------------------------------------------------------- arch table

/** EfficientNet-B0 as timm writes it; B1–B7 scale its widths and depths. */
const B0 = [
  ['ds_r1_k3_s1_e1_c16_se0.25'],
  ['ir_r2_k3_s2_e6_c24_se0.25'],
  ['ir_r2_k5_s2_e6_c40_se0.25'],
  ['ir_r3_k3_s2_e6_c80_se0.25'],
  ['ir_r3_k5_s1_e6_c112_se0.25'],
  ['ir_r4_k5_s2_e6_c192_se0.25'],
  ['ir_r1_k3_s1_e6_c320_se0.25'],
];

/** Compound-scaling coefficients: width, depth, resolution, crop_pct of the TF ports. */
export const SCALING: Record<string, { width: number; depth: number; res: number; cropPct: number }> = {
  b0: { width: 1.0, depth: 1.0, res: 224, cropPct: 0.875 },
  b1: { width: 1.0, depth: 1.1, res: 240, cropPct: 0.882 },
  b2: { width: 1.1, depth: 1.2, res: 260, cropPct: 0.89 },
  b3: { width: 1.2, depth: 1.4, res: 300, cropPct: 0.904 },
  b4: { width: 1.4, depth: 1.8, res: 380, cropPct: 0.922 },
  b5: { width: 1.6, depth: 2.2, res: 456, cropPct: 0.934 },
  b6: { width: 1.8, depth: 2.6, res: 528, cropPct: 0.942 },
  b7: { width: 2.0, depth: 3.1, res: 600, cropPct: 0.949 },
};

export interface EfficientNetArch {
  width: number;
  depth: number;
  /** 'same': TensorFlow SAME padding for the actual input size; 'symmetric': (k − 1) / 2. */
  padding: 'same' | 'symmetric';
  eps: number;
  se: 'timm' | 'paddle' | 'none';
}

export { samePads } from './effnet-builder.js';

// ---------------------------------------------------------------------------------------------- model

export function buildEfficientNet(a: EfficientNetArch, o: BuildOptions): Graph {
  const arch: EffNetArch = {
    def: B0,
    width: a.width,
    depth: a.depth,
    stem: 32,
    numFeatures: roundChannels(a, 1280),
    act: 'silu',
    padding: a.padding,
    eps: a.eps,
    se: a.se === 'none' ? 'none' : { fromExp: false, round: a.se === 'paddle' ? 'paddle' : 'round', gate: 'sigmoid' },
    head: 'efficientnet',
  };
  return buildEffNet(arch, o);
}

// ---------------------------------------------------------------------------------------------- configs

const hub = (arch: string, tag: string, size: number, cropPct: number, extra: Parameters<typeof timmCfg>[2] = {}): PretrainedCfg =>
  timmCfg(arch, tag, { size, cropPct, firstConv: 'conv_stem', classifier: 'classifier', license: 'apache-2.0', ...extra });

/** timm's own efficientnet_* weights are trained at other resolutions than the paper's (spec §4.6). */
function timmOwnCfgs(v: string, arch: string): PretrainedCfg[] {
  switch (v) {
    case 'b0':
      return [hub(arch, 'ra_in1k', 224, 0.875, { url: `${TIMM_RELEASES}/v0.1-weights/efficientnet_b0_ra-3dd342df.pth` })];
    case 'b1':
      return [hub(arch, 'ra4_e3600_r240_in1k', 240, 0.9, { mean: INCEPTION_MEAN, std: INCEPTION_STD, testSize: 288 }), hub(arch, 'ft_in1k', 224, 0.875, { testSize: 256 })];
    case 'b2':
      return [hub(arch, 'ra_in1k', 256, 1.0, { testSize: 288 })];
    case 'b3':
      return [hub(arch, 'ra2_in1k', 288, 1.0, { testSize: 320 })];
    case 'b4':
      return [hub(arch, 'ra2_in1k', 320, 1.0, { testSize: 384 })];
    case 'b5':
      return [hub(arch, 'sw_in12k_ft_in1k', 448, 1.0, { cropMode: 'squash' })];
    default: {
      // timm has no trained weights for efficientnet_b6/b7: the config only sets the paper's size.
      const s = SCALING[v]!;
      return [{ ...hub(arch, 'untrained', s.res, s.cropPct), weights: undefined }];
    }
  }
}

function tfCfgs(v: string, arch: string): PretrainedCfg[] {
  const s = SCALING[v]!;
  const cfgs = [hub(arch, 'ns_jft_in1k', s.res, s.cropPct), hub(arch, 'aa_in1k', s.res, s.cropPct), hub(arch, 'ap_in1k', s.res, s.cropPct, { mean: INCEPTION_MEAN, std: INCEPTION_STD })];
  if (['b0', 'b1', 'b2', 'b3', 'b4', 'b5'].includes(v)) cfgs.push(hub(arch, 'in1k', s.res, s.cropPct));
  return cfgs;
}

const describe = (a: EfficientNetArch) =>
  `MBConv, width x${a.width}, depth x${a.depth}, ${a.padding === 'same' ? 'TF SAME' : 'symmetric'} padding, BN eps ${a.eps}, SE ${a.se === 'none' ? 'none' : 'C_in/4'}`;

// ---------------------------------------------------------------------------------------------- registrations

for (const [v, s] of Object.entries(SCALING)) {
  const own: EfficientNetArch = { width: s.width, depth: s.depth, padding: 'symmetric', eps: 1e-5, se: 'timm' };
  const tf: EfficientNetArch = { width: s.width, depth: s.depth, padding: 'same', eps: 1e-3, se: 'timm' };
  const paddle: EfficientNetArch = { ...tf, se: 'paddle' };
  const paddleName = `EfficientNet${v.toUpperCase()}`;
  register({
    name: `efficientnet_${v}`,
    family: 'efficientnet',
    source: 'timm',
    arch: `efficientnet_${v}`,
    build: (o) => buildEfficientNet(own, o),
    cfgs: timmOwnCfgs(v, `efficientnet_${v}`),
    aliases: [],
    description: describe(own),
  });
  register({
    name: `tf_efficientnet_${v}`,
    family: 'efficientnet',
    source: 'timm',
    arch: `tf_efficientnet_${v}`,
    build: (o) => buildEfficientNet(tf, o),
    cfgs: tfCfgs(v, `tf_efficientnet_${v}`),
    aliases: [paddleName],
    description: describe(tf),
  });
  register({
    name: paddleName,
    family: 'efficientnet',
    source: 'paddleclas',
    arch: paddleName,
    build: (o) => buildEfficientNet(paddle, o),
    cfgs: [paddleCfg(paddleName, { crop: s.res, resizeShort: s.res + 32, file: `dygraph/${paddleName}_pretrained.pdparams`, keys: 'paddle-efficientnet', firstConv: 'conv_stem', classifier: 'classifier' })],
    aliases: [`tf_efficientnet_${v}`],
    description: describe(paddle),
  });
}

const small: EfficientNetArch = { width: 1, depth: 1, padding: 'symmetric', eps: 1e-3, se: 'none' };
register({
  name: 'EfficientNetB0_small',
  family: 'efficientnet',
  source: 'paddleclas',
  arch: 'EfficientNetB0_small',
  build: (o) => buildEfficientNet(small, o),
  cfgs: [paddleCfg('EfficientNetB0_small', { file: 'dygraph/EfficientNetB0_small_pretrained.pdparams', keys: 'paddle-efficientnet', firstConv: 'conv_stem', classifier: 'classifier' })],
  aliases: [],
  description: describe(small),
});

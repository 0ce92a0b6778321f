/**
 * EfficientNetV2 (timm efficientnet.py, `_gen_efficientnetv2_*`): the EfficientNet builder with FusedMBConv
 * (`er`) and conv-BN-act (`cn`, with residual) stages before the MBConv ones, no SE in the fused stages, SiLU.
 * `tf_` variants: TF SAME padding and BN eps 1e-3. The `_rw_` variants are timm's own (symmetric padding).
 */
import { TIMM_RELEASES, timmCfg, type TimmCfgArgs } from './cfg.js';
import { buildEffNet, roundChannels, type EffNetArch } from './effnet-builder.js';
import { register } from './registry.js';
import { INCEPTION_MEAN, INCEPTION_STD, type PretrainedCfg } from './types.js';

const BASE = [['cn_r1_k3_s1_e1_c16_skip'], ['er_r2_k3_s2_e4_c32'], ['er_r2_k3_s2_e4_c48'], ['ir_r3_k3_s2_e4_c96_se0.25'], ['ir_r5_k3_s1_e6_c112_se0.25'], ['ir_r8_k3_s2_e6_c192_se0.25']];
const S = [['cn_r2_k3_s1_e1_c24_skip'], ['er_r4_k3_s2_e4_c48'], ['er_r4_k3_s2_e4_c64'], ['ir_r6_k3_s2_e4_c128_se0.25'], ['ir_r9_k3_s1_e6_c160_se0.25'], ['ir_r15_k3_s2_e6_c256_se0.25']];
/** timm's first small variant (before the official release): an `er` first stage and a wider last one. */
const S_RW = [['er_r2_k3_s1_e1_c24'], ...S.slice(1, -1), ['ir_r15_k3_s2_e6_c272_se0.25']];
const M = [
  ['cn_r3_k3_s1_e1_c24_skip'],
  ['er_r5_k3_s2_e4_c48'],
  ['er_r5_k3_s2_e4_c80'],
  ['ir_r7_k3_s2_e4_c160_se0.25'],
  ['ir_r14_k3_s1_e6_c176_se0.25'],
  ['ir_r18_k3_s2_e6_c304_se0.25'],
  ['ir_r5_k3_s1_e6_c512_se0.25'],
];
const L = [
  ['cn_r4_k3_s1_e1_c32_skip'],
  ['er_r7_k3_s2_e4_c64'],
  ['er_r7_k3_s2_e4_c96'],
  ['ir_r10_k3_s2_e4_c192_se0.25'],
  ['ir_r19_k3_s1_e6_c224_se0.25'],
  ['ir_r25_k3_s2_e6_c384_se0.25'],
  ['ir_r7_k3_s1_e6_c640_se0.25'],
];

interface V2 {
  def: string[][];
  width?: number;
  depth?: number | number[];
  roundLimit?: number;
  stem: number;
  /** Head width before scaling, and whether timm scales it (`round_chs_fn(num_features)`). */
  features: number;
  scaleFeatures: boolean;
}

function arch(v: V2, tf: boolean): EffNetArch {
  const a = { width: v.width ?? 1, roundLimit: v.roundLimit };
  return {
    def: v.def,
    width: a.width,
    depth: v.depth ?? 1,
    roundLimit: v.roundLimit,
    stem: v.stem,
    numFeatures: v.scaleFeatures ? roundChannels(a, v.features) : v.features,
    act: 'silu',
    padding: tf ? 'same' : 'symmetric',
    eps: tf ? 1e-3 : 1e-5,
    se: { fromExp: false, round: 'round', gate: 'sigmoid' },
    head: 'efficientnet',
  };
}

const base = (width: number, depth: number): V2 => ({ def: BASE, width, depth, roundLimit: 0, stem: 32, features: 1280, scaleFeatures: true });

const E = `${TIMM_RELEASES}/v0.1-effv2-weights`;
const cfg = (name: string, tag: string, size: number, test: number, cropPct: number, a: TimmCfgArgs = {}): PretrainedCfg =>
  timmCfg(name, tag, { size, testSize: test, cropPct, firstConv: 'conv_stem', classifier: 'classifier', license: 'apache-2.0', ...a });
const inception = { mean: INCEPTION_MEAN, std: INCEPTION_STD };

/** timm 0.9.16's ImageNet-1k tags (the 21843-class `in21k` heads are left out). */
const VARIANTS: { name: string; v: V2; tf: boolean; cfgs: PretrainedCfg[] }[] = [
  {
    name: 'efficientnetv2_rw_t',
    v: { def: S, width: 0.8, depth: 0.9, stem: 24, features: 1280, scaleFeatures: true },
    tf: false,
    cfgs: [cfg('efficientnetv2_rw_t', 'ra2_in1k', 224, 288, 1.0, { url: `${TIMM_RELEASES}/v0.1-weights/efficientnetv2_t_agc-3620981a.pth` })],
  },
  {
    name: 'efficientnetv2_rw_s',
    v: { def: S_RW, stem: 24, features: 1792, scaleFeatures: true },
    tf: false,
    cfgs: [cfg('efficientnetv2_rw_s', 'ra2_in1k', 288, 384, 1.0, { url: `${TIMM_RELEASES}/v0.1-weights/efficientnet_v2s_ra2_288-a6477665.pth` })],
  },
  {
    name: 'efficientnetv2_rw_m',
    v: { def: S_RW, width: 1.2, depth: [1.2, 1.2, 1.2, 1.2, 1.6, 1.6], stem: 24, features: 1792, scaleFeatures: true },
    tf: false,
    cfgs: [cfg('efficientnetv2_rw_m', 'agc_in1k', 320, 416, 1.0, { url: `${TIMM_RELEASES}/v0.1-weights/efficientnetv2_rw_m_agc-3d90cb1e.pth` })],
  },
  {
    name: 'tf_efficientnetv2_s',
    v: { def: S, stem: 24, features: 1280, scaleFeatures: true },
    tf: true,
    cfgs: [
      cfg('tf_efficientnetv2_s', 'in21k_ft_in1k', 300, 384, 1.0, { ...inception, url: `${E}/tf_efficientnetv2_s_21ft1k-d7dafa41.pth` }),
      cfg('tf_efficientnetv2_s', 'in1k', 300, 384, 1.0, { ...inception, url: `${E}/tf_efficientnetv2_s-eb54923e.pth` }),
    ],
  },
  {
    name: 'tf_efficientnetv2_m',
    v: { def: M, stem: 24, features: 1280, scaleFeatures: false },
    tf: true,
    cfgs: [
      cfg('tf_efficientnetv2_m', 'in21k_ft_in1k', 384, 480, 1.0, { ...inception, cropMode: 'squash', url: `${E}/tf_efficientnetv2_m_21ft1k-bf41664a.pth` }),
      cfg('tf_efficientnetv2_m', 'in1k', 384, 480, 1.0, { ...inception, cropMode: 'squash', url: `${E}/tf_efficientnetv2_m-cc09e0cd.pth` }),
    ],
  },
  {
    name: 'tf_efficientnetv2_l',
    v: { def: L, stem: 32, features: 1280, scaleFeatures: false },
    tf: true,
    cfgs: [
      cfg('tf_efficientnetv2_l', 'in21k_ft_in1k', 384, 480, 1.0, { ...inception, cropMode: 'squash', url: `${E}/tf_efficientnetv2_l_21ft1k-60127a9d.pth` }),
      cfg('tf_efficientnetv2_l', 'in1k', 384, 480, 1.0, { ...inception, cropMode: 'squash', url: `${E}/tf_efficientnetv2_l-d664b728.pth` }),
    ],
  },
  { name: 'tf_efficientnetv2_b0', v: base(1.0, 1.0), tf: true, cfgs: [cfg('tf_efficientnetv2_b0', 'in1k', 192, 224, 0.875, { url: `${E}/tf_efficientnetv2_b0-c7cc451f.pth` })] },
  { name: 'tf_efficientnetv2_b1', v: base(1.0, 1.1), tf: true, cfgs: [cfg('tf_efficientnetv2_b1', 'in1k', 192, 240, 0.882, { url: `${E}/tf_efficientnetv2_b1-be6e41b0.pth` })] },
  { name: 'tf_efficientnetv2_b2', v: base(1.1, 1.2), tf: true, cfgs: [cfg('tf_efficientnetv2_b2', 'in1k', 208, 260, 0.89, { url: `${E}/tf_efficientnetv2_b2-847de54e.pth` })] },
  {
    name: 'tf_efficientnetv2_b3',
    v: base(1.2, 1.4),
    tf: true,
    cfgs: [
      cfg('tf_efficientnetv2_b3', 'in21k_ft_in1k', 240, 300, 0.9, { ...inception, cropMode: 'squash' }),
      cfg('tf_efficientnetv2_b3', 'in1k', 240, 300, 0.904, { url: `${E}/tf_efficientnetv2_b3-57773f13.pth` }),
    ],
  },
];

for (const { name, v, tf, cfgs } of VARIANTS) {
  const a = arch(v, tf);
  register({
    name,
    family: 'efficientnetv2',
    source: 'timm',
    arch: name,
    build: (o) => buildEffNet(a, o),
    cfgs,
    aliases: [],
    description: `FusedMBConv + MBConv, width x${a.width}, depth x${a.depth}, ${tf ? 'TF SAME padding, BN eps 1e-3' : 'symmetric padding'}`,
  });
}

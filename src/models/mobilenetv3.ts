/**
 * MobileNetV3 (timm mobilenetv3.py, `_gen_mobilenet_v3`): the EfficientNet builder with MobileNetV3's arch
 * tables, hard-swish (relu in `_nre` blocks and the minimal variants), SE on the expanded width rounded to
 * multiples of 8 with a relu and a hard-sigmoid gate, and the efficient head (pool → 1×1 conv with bias, no BN).
 * `tf_` variants: TF SAME padding and BN eps 1e-3.
 */
import { TIMM_RELEASES, timmCfg, type TimmCfgArgs } from './cfg.js';
import { buildEffNet, type EffNetArch } from './effnet-builder.js';
import { register } from './registry.js';
import { INCEPTION_MEAN, INCEPTION_STD, type PretrainedCfg } from './types.js';

const DEFS: Record<string, string[][]> = {
  large: [
    ['ds_r1_k3_s1_e1_c16_nre'],
    ['ir_r1_k3_s2_e4_c24_nre', 'ir_r1_k3_s1_e3_c24_nre'],
    ['ir_r3_k5_s2_e3_c40_se0.25_nre'],
    ['ir_r1_k3_s2_e6_c80', 'ir_r1_k3_s1_e2.5_c80', 'ir_r2_k3_s1_e2.3_c80'],
    ['ir_r2_k3_s1_e6_c112_se0.25'],
    ['ir_r3_k5_s2_e6_c160_se0.25'],
    ['cn_r1_k1_s1_c960'],
  ],
  large_minimal: [
    ['ds_r1_k3_s1_e1_c16'],
    ['ir_r1_k3_s2_e4_c24', 'ir_r1_k3_s1_e3_c24'],
    ['ir_r3_k3_s2_e3_c40'],
    ['ir_r1_k3_s2_e6_c80', 'ir_r1_k3_s1_e2.5_c80', 'ir_r2_k3_s1_e2.3_c80'],
    ['ir_r2_k3_s1_e6_c112'],
    ['ir_r3_k3_s2_e6_c160'],
    ['cn_r1_k1_s1_c960'],
  ],
  small: [
    ['ds_r1_k3_s2_e1_c16_se0.25_nre'],
    ['ir_r1_k3_s2_e4.5_c24_nre', 'ir_r1_k3_s1_e3.67_c24_nre'],
    ['ir_r1_k5_s2_e4_c40_se0.25', 'ir_r2_k5_s1_e6_c40_se0.25'],
    ['ir_r2_k5_s1_e3_c48_se0.25'],
    ['ir_r3_k5_s2_e6_c96_se0.25'],
    ['cn_r1_k1_s1_c576'],
  ],
  small_minimal: [
    ['ds_r1_k3_s2_e1_c16'],
    ['ir_r1_k3_s2_e4.5_c24', 'ir_r1_k3_s1_e3.67_c24'],
    ['ir_r1_k3_s2_e4_c40', 'ir_r2_k3_s1_e6_c40'],
    ['ir_r2_k3_s1_e3_c48'],
    ['ir_r3_k3_s2_e6_c96'],
    ['cn_r1_k1_s1_c576'],
  ],
};

export function mobileNetV3Arch(kind: keyof typeof DEFS, width: number, tf: boolean): EffNetArch {
  return {
    def: DEFS[kind]!,
    width,
    depth: 1,
    stem: 16,
    fixStem: width < 0.75,
    numFeatures: kind.startsWith('small') ? 1024 : 1280,
    act: kind.endsWith('minimal') ? 'relu' : 'hard_swish',
    padding: tf ? 'same' : 'symmetric',
    eps: tf ? 1e-3 : 1e-5,
    se: { fromExp: true, round: 'divisible', gate: 'hard_sigmoid', act: 'relu' },
    head: 'mobilenetv3',
  };
}

const W = `${TIMM_RELEASES}/v0.1-weights`;
const cfg = (arch: string, tag: string, a: TimmCfgArgs = {}): PretrainedCfg =>
  timmCfg(arch, tag, { interpolation: 'bilinear', firstConv: 'conv_stem', classifier: 'classifier', license: 'apache-2.0', ...a });
const tfCfg = (arch: string, file: string) => [cfg(arch, 'in1k', { url: `${W}/${file}`, mean: INCEPTION_MEAN, std: INCEPTION_STD })];

/** timm 0.9.16's tags (the 11221-class `miil_in21k` head is left out: its classifier is not ImageNet-1k's). */
const VARIANTS: { name: string; kind: keyof typeof DEFS; width: number; tf: boolean; cfgs: PretrainedCfg[] }[] = [
  { name: 'mobilenetv3_large_075', kind: 'large', width: 0.75, tf: false, cfgs: [{ ...cfg('mobilenetv3_large_075', 'untrained'), weights: undefined }] },
  {
    name: 'mobilenetv3_large_100',
    kind: 'large',
    width: 1.0,
    tf: false,
    cfgs: [
      cfg('mobilenetv3_large_100', 'ra_in1k', { interpolation: 'bicubic', url: `${W}/mobilenetv3_large_100_ra-f55367f5.pth` }),
      cfg('mobilenetv3_large_100', 'miil_in21k_ft_in1k', { mean: [0, 0, 0], std: [1, 1, 1], url: `${TIMM_RELEASES}/v0.1-tresnet/mobilenetv3_large_100_1k_miil_78_0-66471c13.pth` }),
    ],
  },
  { name: 'mobilenetv3_small_050', kind: 'small', width: 0.5, tf: false, cfgs: [cfg('mobilenetv3_small_050', 'lamb_in1k', { interpolation: 'bicubic', url: `${W}/mobilenetv3_small_050_lambc-4b7bbe87.pth` })] },
  { name: 'mobilenetv3_small_075', kind: 'small', width: 0.75, tf: false, cfgs: [cfg('mobilenetv3_small_075', 'lamb_in1k', { interpolation: 'bicubic', url: `${W}/mobilenetv3_small_075_lambc-384766db.pth` })] },
  { name: 'mobilenetv3_small_100', kind: 'small', width: 1.0, tf: false, cfgs: [cfg('mobilenetv3_small_100', 'lamb_in1k', { interpolation: 'bicubic', url: `${W}/mobilenetv3_small_100_lamb-266a294c.pth` })] },
  { name: 'tf_mobilenetv3_large_075', kind: 'large', width: 0.75, tf: true, cfgs: tfCfg('tf_mobilenetv3_large_075', 'tf_mobilenetv3_large_075-150ee8b0.pth') },
  { name: 'tf_mobilenetv3_large_100', kind: 'large', width: 1.0, tf: true, cfgs: tfCfg('tf_mobilenetv3_large_100', 'tf_mobilenetv3_large_100-427764d5.pth') },
  { name: 'tf_mobilenetv3_large_minimal_100', kind: 'large_minimal', width: 1.0, tf: true, cfgs: tfCfg('tf_mobilenetv3_large_minimal_100', 'tf_mobilenetv3_large_minimal_100-8596ae28.pth') },
  { name: 'tf_mobilenetv3_small_075', kind: 'small', width: 0.75, tf: true, cfgs: tfCfg('tf_mobilenetv3_small_075', 'tf_mobilenetv3_small_075-da427f52.pth') },
  { name: 'tf_mobilenetv3_small_100', kind: 'small', width: 1.0, tf: true, cfgs: tfCfg('tf_mobilenetv3_small_100', 'tf_mobilenetv3_small_100-37f49e2b.pth') },
  { name: 'tf_mobilenetv3_small_minimal_100', kind: 'small_minimal', width: 1.0, tf: true, cfgs: tfCfg('tf_mobilenetv3_small_minimal_100', 'tf_mobilenetv3_small_minimal_100-922a7843.pth') },
];

for (const v of VARIANTS) {
  const arch = mobileNetV3Arch(v.kind, v.width, v.tf);
  register({
    name: v.name,
    family: 'mobilenetv3',
    source: 'timm',
    arch: v.name,
    build: (o) => buildEffNet(arch, o),
    cfgs: v.cfgs,
    aliases: [],
    description: `MobileNetV3-${v.kind.replace('_', ' ')} x${v.width}, ${arch.act}, SE (hard-sigmoid) ${v.tf ? 'TF SAME padding, BN eps 1e-3' : 'symmetric padding'}`,
  });
}

/**
 * ConvNeXt V1 and V2 (timm `convnext.py`): a 4×4 stride-4 patch stem with LayerNorm, four stages (LayerNorm +
 * 2×2 stride-2 conv between them), blocks of depthwise 7×7 conv → LayerNorm → MLP (GELU; V2 adds GRN) →
 * layer scale (V1) → residual, then global average pool → LayerNorm → fc. The small variants (atto…nano) run
 * the MLP as 1×1 convs on NCHW (`conv_mlp`); the others permute to NHWC and use Linear layers, as timm does.
 */
import { Graph } from '../ir/graph.js';
import { dropPathSchedule } from '../layers/common.js';
import { paddleCfg, timmCfg } from './cfg.js';
import { register } from './registry.js';
import type { BuildOptions, PretrainedCfg } from './types.js';

export interface ConvNeXtArch {
  depths: number[];
  dims: number[];
  /** 1×1 convs on NCHW for the MLP (timm's conv_mlp) instead of Linear on NHWC. */
  convMlp: boolean;
  /** ConvNeXt V2's Global Response Norm in the MLP. */
  grn: boolean;
  /** Layer-scale init value (timm's ls_init_value); null: no layer scale (V2). */
  ls: number | null;
}

const EPS = 1e-6;

function block(g: Graph, x: string, p: string, c: number, a: ConvNeXtArch, dropPath: number): string {
  if (a.ls !== null) g.reserve([{ name: `${p}.gamma`, shape: [c], role: 'embed' }]); // a block's own parameter comes first in its state_dict
  let y = g.conv(x, `${p}.conv_dw`, { out: c, kernel: 7, groups: c, bias: true });
  if (a.convMlp) {
    y = g.layerNorm2d(y, `${p}.norm`, EPS);
    y = g.gelu(g.conv(y, `${p}.mlp.fc1`, { out: 4 * c, kernel: 1, bias: true }), `${p}.mlp.act`);
    if (a.grn) y = g.grn(y, `${p}.mlp.grn`, 1, EPS);
    y = g.conv(y, `${p}.mlp.fc2`, { out: c, kernel: 1, bias: true });
    if (a.ls !== null) y = g.mul(y, g.parameter(`${p}.gamma`, [c], [1, c, 1, 1], { fill: a.ls }), `${p}.gamma`);
  } else {
    y = g.layerNorm(g.transpose(y, [0, 2, 3, 1], p), `${p}.norm`, EPS);
    y = g.gelu(g.dense(y, `${p}.mlp.fc1`, 4 * c), `${p}.mlp.act`);
    if (a.grn) y = g.grn(y, `${p}.mlp.grn`, 3, EPS);
    y = g.dense(y, `${p}.mlp.fc2`, c);
    if (a.ls !== null) y = g.mul(y, g.parameter(`${p}.gamma`, [c], [1, 1, 1, c], { fill: a.ls }), `${p}.gamma`);
    y = g.transpose(y, [0, 3, 1, 2], p);
  }
  return g.addTensors(g.dropPath(y, dropPath, `${p}.drop_path`), x, p);
}

export function buildConvNeXt(a: ConvNeXtArch, o: BuildOptions): Graph {
  const g = new Graph();
  let x = g.input('input', ['N', o.inChans, o.inputSize[0], o.inputSize[1]]);
  x = g.conv(x, 'stem.0', { out: a.dims[0]!, kernel: 4, stride: 4, pad: 0, bias: true });
  x = g.layerNorm2d(x, 'stem.1', EPS);
  // timm: drop-path rates linear over all blocks, 0 for the first and drop_path_rate for the last.
  const blocks = a.depths.reduce((s, d) => s + d, 0);
  let index = 0;
  a.dims.forEach((c, i) => {
    if (i > 0) {
      x = g.layerNorm2d(x, `stages.${i}.downsample.0`, EPS);
      x = g.conv(x, `stages.${i}.downsample.1`, { out: c, kernel: 2, stride: 2, pad: 0, bias: true });
    }
    for (let j = 0; j < a.depths[i]!; j++) x = block(g, x, `stages.${i}.blocks.${j}`, c, a, dropPathSchedule(o.dropPathRate, index++, Math.max(1, blocks - 1)));
    g.markFeature(x, `stages.${i}`);
  });
  // NormMlpClassifierHead: pool → LayerNorm (on [N, C], the same as timm's LayerNorm2d on [N, C, 1, 1]) → drop → fc.
  const pooled = g.flatten(g.globalAvgPool(x, 'head.global_pool'), 'head.flatten');
  const features = g.output(g.layerNorm(pooled, 'head.norm', EPS), 'features');
  g.output(g.linear(g.dropout(features, o.dropRate ?? 0, 'head.drop'), 'head.fc', o.numClasses), 'logits');
  return g;
}

// ---------------------------------------------------------------------------------------------- configs

const SIZES: Record<string, { depths: number[]; dims: number[]; convMlp: boolean }> = {
  atto: { depths: [2, 2, 6, 2], dims: [40, 80, 160, 320], convMlp: true },
  femto: { depths: [2, 2, 6, 2], dims: [48, 96, 192, 384], convMlp: true },
  pico: { depths: [2, 2, 6, 2], dims: [64, 128, 256, 512], convMlp: true },
  nano: { depths: [2, 2, 8, 2], dims: [80, 160, 320, 640], convMlp: true },
  tiny: { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768], convMlp: false },
  small: { depths: [3, 3, 27, 3], dims: [96, 192, 384, 768], convMlp: false },
  base: { depths: [3, 3, 27, 3], dims: [128, 256, 512, 1024], convMlp: false },
  large: { depths: [3, 3, 27, 3], dims: [192, 384, 768, 1536], convMlp: false },
};

/** PaddleClas names of the same architectures. */
const PADDLE: Record<string, string> = {
  ConvNeXt_tiny: 'convnext_tiny',
  ConvNeXt_small: 'convnext_small',
  ConvNeXt_base_224: 'convnext_base',
  ConvNeXt_base_384: 'convnext_base',
  ConvNeXt_large_224: 'convnext_large',
  ConvNeXt_large_384: 'convnext_large',
};

type Args = NonNullable<Parameters<typeof timmCfg>[2]>;
const cfg = (arch: string, tag: string, a: Args, license: string): PretrainedCfg => timmCfg(arch, tag, { firstConv: 'stem.0', classifier: 'head.fc', license, ...a });
const t288 = { testSize: 288 };
const at384 = { size: 384, cropPct: 1.0, cropMode: 'squash' as const };

/** timm 0.9.16's ImageNet-1k tags (default first); tags with other class counts (in12k, in22k, fcmae) are left out. */
function v1Cfgs(v: string): PretrainedCfg[] {
  const arch = `convnext_${v}`;
  const c = (tag: string, a: Args) => cfg(arch, tag, a, 'apache-2.0');
  switch (v) {
    case 'atto':
      return [c('d2_in1k', t288)];
    case 'femto':
    case 'pico':
      return [c('d1_in1k', t288)];
    case 'nano':
      return [c('in12k_ft_in1k', { cropPct: 0.95, ...t288 }), c('d1h_in1k', { cropPct: 0.95, ...t288 })];
    case 'tiny':
    case 'small':
      return [
        c('in12k_ft_in1k', { cropPct: 0.95, ...t288 }),
        c('in12k_ft_in1k_384', at384),
        c('fb_in22k_ft_in1k', t288),
        c('fb_in1k', t288),
        c('fb_in22k_ft_in1k_384', at384),
      ];
    default:
      return [c('fb_in22k_ft_in1k', t288), c('fb_in1k', t288), c('fb_in22k_ft_in1k_384', at384)];
  }
}

function v2Cfgs(v: string): PretrainedCfg[] {
  const arch = `convnextv2_${v}`;
  const c = (tag: string, a: Args) => cfg(arch, tag, a, 'cc-by-nc-4.0');
  if (['atto', 'femto', 'pico'].includes(v)) return [c('fcmae_ft_in1k', t288)];
  if (v === 'small') return [{ ...c('untrained', {}), weights: undefined }];
  return [c('fcmae_ft_in22k_in1k', t288), c('fcmae_ft_in22k_in1k_384', at384), c('fcmae_ft_in1k', t288)];
}

const describe = (a: ConvNeXtArch) =>
  `depths ${a.depths.join('-')}, dims ${a.dims.join('-')}, ${a.convMlp ? '1x1-conv MLP (NCHW)' : 'Linear MLP (NHWC)'}, ${a.grn ? 'GRN' : `layer scale ${a.ls}`}, LayerNorm eps 1e-6`;

// ---------------------------------------------------------------------------------------------- registrations

for (const [v, s] of Object.entries(SIZES)) {
  const v1: ConvNeXtArch = { ...s, grn: false, ls: 1e-6 };
  const v2: ConvNeXtArch = { ...s, grn: true, ls: null };
  for (const [name, arch, cfgs] of [
    [`convnext_${v}`, v1, v1Cfgs(v)],
    [`convnextv2_${v}`, v2, v2Cfgs(v)],
  ] as const) {
    const aliases = Object.entries(PADDLE).filter(([, t]) => t === name).map(([pn]) => pn);
    register({ name, family: 'convnext', source: 'timm', arch: name, build: (o: BuildOptions) => buildConvNeXt(arch, o), cfgs: [...cfgs], aliases, description: describe(arch) });
  }
}

// PaddleClas (ppcls/arch/backbone/model_zoo/convnext.py): the FB layout under key map 'paddle-convnext'; eval
// transforms PIL bicubic short side 256 (384 for the 384 models), centre crop, ImageNet mean/std.
for (const [name, timmName] of Object.entries(PADDLE)) {
  const v = timmName.slice('convnext_'.length);
  const arch: ConvNeXtArch = { ...SIZES[v]!, grn: false, ls: 1e-6 };
  const size = name.endsWith('_384') ? 384 : 224;
  const base = paddleCfg(name, { crop: size, resizeShort: size === 384 ? 384 : 256, file: `dygraph/${name}_pretrained.pdparams`, keys: 'paddle-convnext', firstConv: 'stem.0', classifier: 'head.fc' });
  register({
    name,
    family: 'convnext',
    source: 'paddleclas',
    arch: name,
    build: (o: BuildOptions) => buildConvNeXt(arch, o),
    cfgs: [{ ...base, interpolation: 'bicubic', resizeBackend: 'pil' }],
    aliases: [timmName],
    description: describe(arch),
  });
}

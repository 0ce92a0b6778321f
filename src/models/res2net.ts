/**
 * Res2Net: the ResNet builder with a multi-scale branch. The 1×1 output is split into `scale` chunks of width
 * `w`; chunk i goes through its own 3×3 after adding the previous chunk's result (hierarchical residuals),
 * the last chunk passes through — except in "first" blocks, which drop the adds and pool the last chunk.
 *
 * Which blocks are "first", and how that pool averages, is where the sources differ (spec §4.6):
 * timm (= the original code): stride > 1 or a projection; the pool counts padding (PyTorch default).
 * PaddleClas: stride 2 only; the pool excludes padding (Paddle `exclusive=True`). Same tensors, other outputs.
 */
import type { Graph } from '../ir/graph.js';
import { bnParams, convBnAct } from '../layers/common.js';
import { paddleCfg, timmCfg } from './cfg.js';
import { register } from './registry.js';
import { buildResNet, describeResNet, type BlockArgs, type Branch, type ResNetArch } from './resnet.js';

// ---------------------------------------------------------------------------------------------- block

export function res2Branch(scale: number, rule: 'timm' | 'paddle'): Branch {
  return {
    name: `res2net ${scale}s (${rule} first-block rule)`,
    build(g: Graph, x: string, p: string, b: BlockArgs): string {
      const width = Math.floor((b.planes * b.baseWidth) / 64) * b.cardinality;
      const outC = b.planes * 4;
      const inC = g.shape(x)[1] as number;
      const isFirst = rule === 'timm' ? b.stride > 1 || b.project : b.stride > 1;
      const convs = Math.max(1, scale - 1);
      // timm's state_dict lists all convs.* before all bns.*: declare them in that order.
      g.reserve([
        { name: `${p}.conv1.weight`, shape: [width * scale, inC, 1, 1], role: 'weight' },
        ...bnParams(`${p}.bn1`, width * scale),
        ...Array.from({ length: convs }, (_, i) => ({ name: `${p}.convs.${i}.weight`, shape: [width, width / b.cardinality, 3, 3], role: 'weight' as const })),
        ...Array.from({ length: convs }, (_, i) => bnParams(`${p}.bns.${i}`, width)).flat(),
      ]);
      const y = convBnAct(g, x, `${p}.conv1`, `${p}.bn1`, { out: width * scale, kernel: 1 });
      const chunks = scale > 1 ? g.split(y, Array<number>(scale).fill(width), 1, p) : [y];
      const outs: string[] = [];
      let sp = chunks[0]!;
      for (let i = 0; i < convs; i++) {
        sp = i === 0 || isFirst ? chunks[i]! : g.addTensors(sp, chunks[i]!, p);
        sp = convBnAct(g, sp, `${p}.convs.${i}`, `${p}.bns.${i}`, { out: width, kernel: 3, stride: b.stride, groups: b.cardinality });
        outs.push(sp);
      }
      if (scale > 1) {
        const last = chunks[scale - 1]!;
        outs.push(isFirst ? g.avgPool(last, `${p}.pool`, { kernel: 3, stride: b.stride, pad: 1, countIncludePad: rule === 'timm' }) : last);
      }
      return convBnAct(g, g.concat(outs, 1, p), `${p}.conv3`, `${p}.bn3`, { out: outC, kernel: 1 }, 'none');
    },
  };
}

// ---------------------------------------------------------------------------------------------- models

const L50: [number, number, number, number] = [3, 4, 6, 3];
const L101: [number, number, number, number] = [3, 4, 23, 3];

const res2 = (layers: [number, number, number, number], width: number, scale: number, rule: 'timm' | 'paddle', vd = false): ResNetArch => ({
  block: res2Branch(scale, rule),
  layers,
  baseWidth: width,
  ...(vd ? { stem: 'deep32', avgDown: true } : {}),
});

const TIMM: Record<string, ResNetArch> = {
  res2net50_26w_4s: res2(L50, 26, 4, 'timm'),
  res2net101_26w_4s: res2(L101, 26, 4, 'timm'),
  res2net50_26w_6s: res2(L50, 26, 6, 'timm'),
  res2net50_26w_8s: res2(L50, 26, 8, 'timm'),
  res2net50_48w_2s: res2(L50, 48, 2, 'timm'),
  res2net50_14w_8s: res2(L50, 14, 8, 'timm'),
  res2net50d: res2(L50, 26, 4, 'timm', true),
  res2net101d: res2(L101, 26, 4, 'timm', true),
};

const PADDLE: Record<string, ResNetArch> = {
  Res2Net50_26w_4s: res2(L50, 26, 4, 'paddle'),
  Res2Net50_vd_26w_4s: res2(L50, 26, 4, 'paddle', true),
  Res2Net50_14w_8s: res2(L50, 14, 8, 'paddle'),
  Res2Net101_vd_26w_4s: res2(L101, 26, 4, 'paddle', true),
  Res2Net200_vd_26w_4s: res2([3, 12, 48, 3], 26, 4, 'paddle', true),
};

/** timm twins: same tensors, different forward (first-block rule and pool divisor). */
const TWIN: Record<string, string> = {
  Res2Net50_26w_4s: 'res2net50_26w_4s',
  Res2Net50_vd_26w_4s: 'res2net50d',
  Res2Net50_14w_8s: 'res2net50_14w_8s',
  Res2Net101_vd_26w_4s: 'res2net101d',
};

// ---------------------------------------------------------------------------------------------- registrations

for (const [name, arch] of Object.entries(TIMM)) {
  register({
    name,
    family: 'res2net',
    source: 'timm',
    arch: name,
    build: (o) => buildResNet(arch, o),
    cfgs: [timmCfg(name, 'in1k', { interpolation: 'bilinear', firstConv: arch.stem ? 'conv1.0' : 'conv1' })],
    aliases: [],
    description: describeResNet(arch),
  });
}

for (const [name, arch] of Object.entries(PADDLE)) {
  const variants = name.includes('_vd_') ? [name, `${name}_ssld`] : [name];
  for (const v of variants) {
    register({
      name: v,
      family: 'res2net',
      source: 'paddleclas',
      arch: name,
      build: (o) => buildResNet(arch, o),
      cfgs: [paddleCfg(v, { file: `dygraph/${v}_pretrained.pdparams`, keys: 'paddle-res2net', firstConv: arch.stem ? 'conv1.0' : 'conv1' })],
      aliases: [],
      description: `${describeResNet(arch)}${TWIN[name] ? `; tensors 1:1 with timm ${TWIN[name]}, forward differs` : ''}`,
    });
  }
}

/**
 * ResNeSt: the ResNet builder with a split-attention branch (spec: arch-resnest-regnet-effnet.md §2).
 *
 * conv1 1×1 → [avd pool if "fast"] → split-attention 3×3 (radix R, cardinality C) → [avd pool] → conv3 1×1.
 * Split attention: a grouped 3×3 to R·gw channels, the R chunks summed and pooled, fc1 → BN → ReLU → fc2,
 * softmax over the radix (sigmoid when R = 1), and the chunks recombined with those weights.
 * PaddleClas differs: fc1 has no bias, and the avd pool excludes padding from its mean.
 */
import type { Graph } from '../ir/graph.js';
import { convBnAct, makeDivisible } from '../layers/common.js';
import { paddleCfg, timmCfg, TIMM_RELEASES } from './cfg.js';
import { register } from './registry.js';
import { buildResNet, describeResNet, type BlockArgs, type Branch, type ResNetArch } from './resnet.js';
import type { Interpolation } from './types.js';

// ---------------------------------------------------------------------------------------------- blocks

interface SplatOptions {
  radix: number;
  stride: number;
  cardinality: number;
  source: 'timm' | 'paddle';
}

/** Split attention over `radix` groups of `gw` channels, at module path `p` (timm's SplitAttn keys). */
export function splitAttention(g: Graph, x: string, p: string, gw: number, o: SplatOptions): string {
  const { radix, cardinality: card } = o;
  const mid = gw * radix;
  const attn = o.source === 'timm' ? makeDivisible(gw * radix * 0.25, 8, 32) : Math.max(Math.floor((gw * radix) / 4), 32);
  const y = convBnAct(g, x, `${p}.conv`, `${p}.bn0`, { out: mid, kernel: 3, stride: o.stride, groups: card * radix });
  const chunks = radix > 1 ? g.split(y, Array<number>(radix).fill(gw), 1, p) : [y];
  const summed = chunks.slice(1).reduce((a, c) => g.addTensors(a, c, p), chunks[0]!);
  let a = convBnAct(g, g.globalAvgPool(summed, p), `${p}.fc1`, `${p}.bn1`, { out: attn, kernel: 1, groups: card, bias: o.source === 'timm' });
  a = g.conv(a, `${p}.fc2`, { out: mid, kernel: 1, groups: card, bias: true });
  if (radix === 1) return g.mul(y, g.sigmoid(a, p), p);
  // fc2's channels are cardinality-major [C, R, gw/C]: softmax over R, then back to radix-major [R, C, gw/C].
  a = g.softmax(g.reshape(a, [card, radix, gw / card], p), 2, p);
  a = g.reshape(g.transpose(a, [0, 2, 1, 3], p), [mid, 1, 1], p);
  const weights = g.split(a, Array<number>(radix).fill(gw), 1, p);
  return chunks.map((c, r) => g.mul(c, weights[r]!, p)).reduce((s, t) => g.addTensors(s, t, p));
}

export function splatBranch(radix: number, avdFirst: boolean, source: 'timm' | 'paddle'): Branch {
  return {
    name: `split-attention ${radix}s (avd ${avdFirst ? 'first' : 'last'}, ${source})`,
    build(g: Graph, x: string, p: string, b: BlockArgs): string {
      const gw = Math.floor((b.planes * b.baseWidth) / 64) * b.cardinality;
      // avd: the stride moves from the 3×3 to a 3×3 average pool, before or after it.
      const avd = b.stride > 1;
      const pool = (t: string, where: string) =>
        g.avgPool(t, `${p}.${where}`, { kernel: 3, stride: b.stride, pad: 1, countIncludePad: source === 'timm' });
      let y = convBnAct(g, x, `${p}.conv1`, `${p}.bn1`, { out: gw, kernel: 1 });
      if (avd && avdFirst) y = pool(y, 'avd_first');
      y = splitAttention(g, y, `${p}.conv2`, gw, { radix, stride: avd ? 1 : b.stride, cardinality: b.cardinality, source });
      if (avd && !avdFirst) y = pool(y, 'avd_last');
      return convBnAct(g, y, `${p}.conv3`, `${p}.bn3`, { out: b.planes * 4, kernel: 1 }, 'none');
    },
  };
}

// ---------------------------------------------------------------------------------------------- models

interface Resnest {
  layers: [number, number, number, number];
  stemWidth: 32 | 64;
  radix: number;
  cardinality: number;
  baseWidth: number;
  avdFirst: boolean;
}

const d = (layers: Resnest['layers'], extra: Partial<Resnest> = {}): Resnest => ({ layers, stemWidth: 32, radix: 2, cardinality: 1, baseWidth: 64, avdFirst: false, ...extra });
const e = (layers: Resnest['layers']): Resnest => d(layers, { stemWidth: 64 });

function arch(r: Resnest, source: 'timm' | 'paddle'): ResNetArch {
  return {
    block: splatBranch(r.radix, r.avdFirst, source),
    layers: r.layers,
    cardinality: r.cardinality,
    baseWidth: r.baseWidth,
    stem: r.stemWidth === 32 ? 'deep32' : 'deep64',
    avgDown: true,
  };
}

const TIMM: Record<string, { r: Resnest; tag: string; size?: number; cropPct?: number; interpolation?: Interpolation; legacy?: string }> = {
  resnest14d: { r: d([1, 1, 1, 1]), tag: 'gluon_in1k', interpolation: 'bilinear', legacy: 'v0.1-weights/gluon_resnest14-9c8fe254.pth' },
  resnest26d: { r: d([2, 2, 2, 2]), tag: 'gluon_in1k', interpolation: 'bilinear', legacy: 'v0.1-weights/gluon_resnest26-50eb607c.pth' },
  resnest50d: { r: d([3, 4, 6, 3]), tag: 'in1k', interpolation: 'bilinear', legacy: 'v0.1-resnest/resnest50-528c19ca.pth' },
  resnest101e: { r: e([3, 4, 23, 3]), tag: 'in1k', size: 256, interpolation: 'bilinear', legacy: 'v0.1-resnest/resnest101-22405ba7.pth' },
  resnest200e: { r: e([3, 24, 36, 3]), tag: 'in1k', size: 320, cropPct: 0.909, legacy: 'v0.1-resnest/resnest200-75117900.pth' },
  resnest269e: { r: e([3, 30, 48, 8]), tag: 'in1k', size: 416, cropPct: 0.928, legacy: 'v0.1-resnest/resnest269-0cc87c48.pth' },
  resnest50d_4s2x40d: { r: d([3, 4, 6, 3], { radix: 4, cardinality: 2, baseWidth: 40, avdFirst: true }), tag: 'in1k', legacy: 'v0.1-resnest/resnest50_fast_4s2x40d-41d14ed0.pth' },
  resnest50d_1s4x24d: { r: d([3, 4, 6, 3], { radix: 1, cardinality: 4, baseWidth: 24, avdFirst: true }), tag: 'in1k', legacy: 'v0.1-resnest/resnest50_fast_1s4x24d-d4a4f76f.pth' },
};

const PADDLE: Record<string, Resnest> = {
  ResNeSt50_fast_1s1x64d: d([3, 4, 6, 3], { radix: 1, avdFirst: true }),
  ResNeSt50: d([3, 4, 6, 3]),
};

// ---------------------------------------------------------------------------------------------- registrations

for (const [name, m] of Object.entries(TIMM)) {
  const a = arch(m.r, 'timm');
  register({
    name,
    family: 'resnest',
    source: 'timm',
    arch: name,
    build: (o) => buildResNet(a, o),
    cfgs: [
      timmCfg(name, m.tag, {
        size: m.size,
        cropPct: m.cropPct,
        interpolation: m.interpolation ?? 'bicubic',
        firstConv: 'conv1.0',
        url: m.legacy ? `${TIMM_RELEASES}/${m.legacy}` : undefined,
        license: 'apache-2.0',
      }),
    ],
    aliases: [],
    description: describeResNet(a),
  });
}

for (const [name, r] of Object.entries(PADDLE)) {
  const a = arch(r, 'paddle');
  register({
    name,
    family: 'resnest',
    source: 'paddleclas',
    arch: name,
    build: (o) => buildResNet(a, o),
    cfgs: [paddleCfg(name, { file: `dygraph/${name}_pretrained.pdparams`, keys: 'paddle-resnest', firstConv: 'conv1.0' })],
    aliases: [],
    description: `${describeResNet(a)}; fc1 without bias, avd pool excludes padding`,
  });
}

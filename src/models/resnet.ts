/**
 * ResNet family: ResNet (b/c/d), ResNeXt, WSL ResNeXt, SE-ResNet(Xt), SENet-154 — one parametric builder.
 *
 * Variants are data (`ResNetArch`): stem type, avg-down shortcut, cardinality/base width, SE rule and a few
 * source quirks (PaddleClas' stage-1 projection in basic-block nets, Cadene's legacy SENet-154 layout).
 * Parameter names are timm's state_dict keys; PaddleClas nets use the same naming with their own shapes.
 * Spec: shared/spec/arch-resnet-family.md.
 */
import { Graph } from '../ir/graph.js';
import { classifierHead, convBnAct, dropPathSchedule, makeDivisible, squeezeExcite } from '../layers/common.js';
import { paddleCfg, timmCfg, TIMM_RELEASES } from './cfg.js';
import { register } from './registry.js';
import type { BuildOptions, KeyScheme, PretrainedCfg } from './types.js';

// ---------------------------------------------------------------------------------------------- architecture

/** A residual branch of another family (Res2Net, ResNeSt): builds `planes * 4` output channels, pre-add. */
export interface Branch {
  name: string;
  build(g: Graph, x: string, path: string, b: BlockArgs): string;
}

export interface ResNetArch {
  block: 'basic' | 'bottleneck' | Branch;
  layers: [number, number, number, number];
  cardinality?: number;
  baseWidth?: number;
  /** 7×7/s2 (b), deep 3×3 stems of width 32 (c/d) or 64 (e/s), or Cadene's `layer0` 64-64-128 stem. */
  stem?: '7x7' | 'deep32' | 'deep64' | 'legacy64';
  /** ResNet-D shortcut: 2×2 average pool, then a stride-1 1×1 projection. */
  avgDown?: boolean;
  /** SE reduced width: timm `make_divisible(C/16, 8)`, PaddleClas `int(C/16)`, Cadene `C // 16` (`se_module`). */
  se?: 'timm' | 'paddle' | 'legacy';
  /** PaddleClas basic-block nets project stage 1 block 0 even when the shapes match. */
  stage1Projection?: boolean;
  /** Divides the first 1×1's width (Cadene SENet-154: 2). */
  reduceFirst?: number;
  /** Kernel of the projection conv in stages 2–4 (Cadene SENet-154: 3). */
  downKernel?: number;
  classifier?: string;
}

export interface BlockArgs {
  planes: number;
  stride: number;
  /** Block 0 of a stage with a projection shortcut. */
  project: boolean;
  stage: number;
  cardinality: number;
  baseWidth: number;
}

function seWidth(rule: NonNullable<ResNetArch['se']>, c: number): number {
  return rule === 'timm' ? makeDivisible(c / 16, 8, undefined, 0) : Math.floor(c / 16);
}

function shortcut(g: Graph, x: string, p: string, arch: ResNetArch, b: BlockArgs, outC: number): string {
  if (!b.project) return x;
  if (arch.avgDown) {
    const pooled = b.stride === 1 ? x : g.avgPool(x, `${p}.downsample.0`, { kernel: 2, stride: b.stride, ceil: true, countIncludePad: false });
    return g.batchNorm(g.conv(pooled, `${p}.downsample.1`, { out: outC, kernel: 1 }), `${p}.downsample.2`);
  }
  const k = b.stage === 0 ? 1 : (arch.downKernel ?? 1);
  return g.batchNorm(g.conv(x, `${p}.downsample.0`, { out: outC, kernel: k, stride: b.stride }), `${p}.downsample.1`);
}

const expansion = (a: ResNetArch) => (a.block === 'basic' ? 1 : 4);

function block(g: Graph, x: string, p: string, arch: ResNetArch, b: BlockArgs, dropPath = 0): string {
  let y: string;
  const outC = b.planes * expansion(arch);
  if (arch.block === 'basic') {
    y = convBnAct(g, x, `${p}.conv1`, `${p}.bn1`, { out: b.planes, kernel: 3, stride: b.stride });
    y = convBnAct(g, y, `${p}.conv2`, `${p}.bn2`, { out: outC, kernel: 3 }, 'none');
  } else if (arch.block === 'bottleneck') {
    const width = Math.floor((b.planes * b.baseWidth) / 64) * b.cardinality;
    y = convBnAct(g, x, `${p}.conv1`, `${p}.bn1`, { out: width / (arch.reduceFirst ?? 1), kernel: 1 });
    y = convBnAct(g, y, `${p}.conv2`, `${p}.bn2`, { out: width, kernel: 3, stride: b.stride, groups: b.cardinality });
    y = convBnAct(g, y, `${p}.conv3`, `${p}.bn3`, { out: outC, kernel: 1 }, 'none');
  } else {
    y = arch.block.build(g, x, p, b);
  }
  if (arch.se) y = squeezeExcite(g, y, `${p}.${arch.se === 'legacy' ? 'se_module' : 'se'}`, seWidth(arch.se, outC));
  // timm's Res2Net blocks ignore drop_path and ResNeSt's refuse it: only the plain blocks take it.
  if (typeof arch.block === 'string') y = g.dropPath(y, dropPath, `${p}.drop_path`);
  return g.relu(g.addTensors(y, shortcut(g, x, p, arch, b, outC), p), p);
}

function stem(g: Graph, x: string, arch: ResNetArch): { y: string; outC: number } {
  const kind = arch.stem ?? '7x7';
  if (kind === '7x7') {
    const y = g.markFeature(convBnAct(g, x, 'conv1', 'bn1', { out: 64, kernel: 7, stride: 2, pad: 3 }), 'act1');
    return { y: g.maxPool(y, 'maxpool', { kernel: 3, stride: 2, pad: 1 }), outC: 64 };
  }
  if (kind === 'legacy64') {
    let y = convBnAct(g, x, 'layer0.conv1', 'layer0.bn1', { out: 64, kernel: 3, stride: 2 });
    y = convBnAct(g, y, 'layer0.conv2', 'layer0.bn2', { out: 64, kernel: 3 });
    y = g.markFeature(convBnAct(g, y, 'layer0.conv3', 'layer0.bn3', { out: 128, kernel: 3 }), 'layer0');
    // Cadene's stem pools 3×3/s2 without padding, in ceil mode: same size as pad 1, windows shifted.
    return { y: g.maxPool(y, 'layer0.pool', { kernel: 3, stride: 2, ceil: true }), outC: 128 };
  }
  const w = kind === 'deep32' ? 32 : 64;
  let y = convBnAct(g, x, 'conv1.0', 'conv1.1', { out: w, kernel: 3, stride: 2 });
  y = convBnAct(g, y, 'conv1.3', 'conv1.4', { out: w, kernel: 3 });
  y = g.markFeature(convBnAct(g, y, 'conv1.6', 'bn1', { out: 2 * w, kernel: 3 }), 'act1');
  return { y: g.maxPool(y, 'maxpool', { kernel: 3, stride: 2, pad: 1 }), outC: 2 * w };
}

export function buildResNet(arch: ResNetArch, o: BuildOptions): Graph {
  const g = new Graph();
  const input = g.input('input', ['N', o.inChans, o.inputSize[0], o.inputSize[1]]);
  let { y: x, outC: c } = stem(g, input, arch);
  // timm's ResNet stochastic depth: rate · index / (blocks − 1), the last block at the full rate.
  const blocks = arch.layers.reduce((a, b) => a + b, 0);
  let index = 0;
  arch.layers.forEach((depth, stage) => {
    const planes = 64 * 2 ** stage;
    const outC = planes * expansion(arch);
    for (let i = 0; i < depth; i++) {
      const stride = i === 0 && stage > 0 ? 2 : 1;
      const project = i === 0 && (stride !== 1 || c !== outC || (stage === 0 && !!arch.stage1Projection));
      const args = { planes, stride, project, stage, cardinality: arch.cardinality ?? 1, baseWidth: arch.baseWidth ?? 64 };
      x = block(g, x, `layer${stage + 1}.${i}`, arch, args, dropPathSchedule(o.dropPathRate, index++, Math.max(1, blocks - 1)));
      c = outC;
    }
    g.markFeature(x, `layer${stage + 1}`);
  });
  classifierHead(g, x, arch.classifier ?? 'fc', o.numClasses, o.dropRate);
  return g;
}

// ---------------------------------------------------------------------------------------------- timm models

const L18: [number, number, number, number] = [2, 2, 2, 2];
const L34: [number, number, number, number] = [3, 4, 6, 3];
const L101: [number, number, number, number] = [3, 4, 23, 3];
const L152: [number, number, number, number] = [3, 8, 36, 3];

const TV = 'https://download.pytorch.org/models';
const tv = (arch: string, file: string, extra: Parameters<typeof timmCfg>[2] = {}) =>
  timmCfg(arch, 'tv_in1k', { interpolation: 'bilinear', url: `${TV}/${file}`, license: 'bsd-3-clause', ...extra });
const rsb = (arch: string, tag: 'a1_in1k' | 'a1h_in1k') => timmCfg(arch, tag, { cropPct: 0.95, testSize: 288 });
const gluon = (arch: string) => timmCfg(arch, 'gluon_in1k');
const wsl = (arch: string, file: string) =>
  timmCfg(arch, 'fb_wsl_ig1b_ft_in1k', { interpolation: 'bilinear', url: `${TV}/${file}`, license: 'cc-by-nc-4.0' });

interface TimmResNet {
  arch: ResNetArch;
  cfgs: (name: string) => PretrainedCfg[];
  aliases?: string[];
}

const bottleneck = (layers: [number, number, number, number], extra: Partial<ResNetArch> = {}): ResNetArch => ({ block: 'bottleneck', layers, ...extra });
const resnetD = { stem: 'deep32', avgDown: true } as const;

const TIMM: Record<string, TimmResNet> = {
  resnet18: { arch: { block: 'basic', layers: L18 }, cfgs: (n) => [rsb(n, 'a1_in1k'), tv(n, 'resnet18-f37072fd.pth')] },
  resnet34: { arch: { block: 'basic', layers: L34 }, cfgs: (n) => [rsb(n, 'a1_in1k'), tv(n, 'resnet34-b627a593.pth')] },
  resnet50: { arch: bottleneck(L34), cfgs: (n) => [rsb(n, 'a1_in1k'), tv(n, 'resnet50-0676ba61.pth')], aliases: ['ResNet50'] },
  resnet101: { arch: bottleneck(L101), cfgs: (n) => [rsb(n, 'a1h_in1k'), tv(n, 'resnet101-63fe2227.pth')], aliases: ['ResNet101'] },
  resnet152: { arch: bottleneck(L152), cfgs: (n) => [rsb(n, 'a1h_in1k'), tv(n, 'resnet152-394f9c45.pth')], aliases: ['ResNet152'] },
  resnet50c: { arch: bottleneck(L34, { stem: 'deep32' }), cfgs: (n) => [gluon(n)], aliases: ['ResNet50_vc'] },
  resnet18d: { arch: { block: 'basic', layers: L18, ...resnetD }, cfgs: (n) => [timmCfg(n, 'ra2_in1k', { testSize: 288 })] },
  resnet34d: { arch: { block: 'basic', layers: L34, ...resnetD }, cfgs: (n) => [timmCfg(n, 'ra2_in1k', { testSize: 288 })] },
  resnet50d: { arch: bottleneck(L34, resnetD), cfgs: (n) => [timmCfg(n, 'ra2_in1k', { testSize: 288 }), gluon(n)], aliases: ['ResNet50_vd'] },
  resnet101d: {
    arch: bottleneck(L101, resnetD),
    cfgs: (n) => [timmCfg(n, 'ra2_in1k', { size: 256, cropPct: 0.95, testSize: 320 }), gluon(n)],
    aliases: ['ResNet101_vd'],
  },
  resnet152d: {
    arch: bottleneck(L152, resnetD),
    cfgs: (n) => [timmCfg(n, 'ra2_in1k', { size: 256, cropPct: 0.95, testSize: 320 }), gluon(n)],
    aliases: ['ResNet152_vd'],
  },
  // He et al.'s ResNet-200 (3-24-36-3), not PaddleClas' ResNet200_vd (3-12-48-3).
  resnet200d: { arch: bottleneck([3, 24, 36, 3], resnetD), cfgs: (n) => [timmCfg(n, 'ra2_in1k', { size: 256, cropPct: 0.95, testSize: 320 })] },
  resnext50_32x4d: {
    arch: bottleneck(L34, { cardinality: 32, baseWidth: 4 }),
    cfgs: (n) => [rsb(n, 'a1h_in1k'), tv(n, 'resnext50_32x4d-7cdf4587.pth')],
    aliases: ['ResNeXt50_32x4d'],
  },
  resnext50d_32x4d: {
    arch: bottleneck(L34, { cardinality: 32, baseWidth: 4, ...resnetD }),
    cfgs: (n) => [timmCfg(n, 'bt_in1k', { testSize: 288, url: `${TIMM_RELEASES}/v0.1-weights/resnext50d_32x4d-103e99f8.pth` })],
    aliases: ['ResNeXt50_vd_32x4d'],
  },
  resnext101_32x4d: {
    arch: bottleneck(L101, { cardinality: 32, baseWidth: 4 }),
    cfgs: (n) => [timmCfg(n, 'fb_ssl_yfcc100m_ft_in1k', { interpolation: 'bilinear', license: 'cc-by-nc-4.0' }), gluon(n)],
    aliases: ['ResNeXt101_32x4d'],
  },
  resnext101_64x4d: {
    arch: bottleneck(L101, { cardinality: 64, baseWidth: 4 }),
    cfgs: (n) => [timmCfg(n, 'c1_in1k', { cropPct: 0.95, testSize: 288 }), tv(n, 'resnext101_64x4d-173b62eb.pth'), gluon(n)],
    aliases: ['ResNeXt101_64x4d'],
  },
  resnext101_32x8d: {
    arch: bottleneck(L101, { cardinality: 32, baseWidth: 8 }),
    cfgs: (n) => [wsl(n, 'ig_resnext101_32x8-c38310e5.pth'), tv(n, 'resnext101_32x8d-8ba56ff5.pth')],
    aliases: ['ResNeXt101_32x8d_wsl'],
  },
  resnext101_32x16d: {
    arch: bottleneck(L101, { cardinality: 32, baseWidth: 16 }),
    cfgs: (n) => [wsl(n, 'ig_resnext101_32x16-c6f796b0.pth')],
    aliases: ['ResNeXt101_32x16d_wsl'],
  },
  resnext101_32x32d: {
    arch: bottleneck(L101, { cardinality: 32, baseWidth: 32 }),
    cfgs: (n) => [wsl(n, 'ig_resnext101_32x32-e4b90b00.pth')],
    aliases: ['ResNeXt101_32x32d_wsl'],
  },
  resnext101_32x48d: {
    arch: bottleneck(L101, { cardinality: 32, baseWidth: 48 }),
    cfgs: (n) => [wsl(n, 'ig_resnext101_32x48-3e41cc8a.pth')],
    aliases: ['ResNeXt101_32x48d_wsl'],
  },
  seresnext50_32x4d: {
    arch: bottleneck(L34, { cardinality: 32, baseWidth: 4, se: 'timm' }),
    cfgs: (n) => [timmCfg(n, 'racm_in1k', { testSize: 288 }), gluon(n)],
    aliases: ['SE_ResNeXt50_32x4d'],
  },
  seresnext101_32x4d: { arch: bottleneck(L101, { cardinality: 32, baseWidth: 4, se: 'timm' }), cfgs: (n) => [gluon(n)], aliases: ['SE_ResNeXt101_32x4d'] },
  legacy_senet154: {
    arch: bottleneck(L152, { cardinality: 64, baseWidth: 4, stem: 'legacy64', se: 'legacy', reduceFirst: 2, downKernel: 3, classifier: 'last_linear' }),
    cfgs: (n) => [
      timmCfg(n, 'in1k', {
        interpolation: 'bilinear',
        firstConv: 'layer0.conv1',
        classifier: 'last_linear',
        url: `${TIMM_RELEASES}/v0.1-weights/legacy_senet154-e9eb9fe6.pth`,
      }),
    ],
  },
};

// ---------------------------------------------------------------------------------------------- PaddleClas models

interface PaddleResNet {
  arch: ResNetArch;
  /** Checkpoint file under the bucket, and its key scheme. */
  keys: KeyScheme;
  file?: string;
  aliases?: string[];
}

const legendary: KeyScheme = 'paddle-legendary';
const zoo: KeyScheme = 'paddle-modelzoo';
const basicVd = (layers: [number, number, number, number], extra: Partial<ResNetArch> = {}): ResNetArch => ({
  block: 'basic',
  layers,
  stage1Projection: true,
  ...extra,
});
const next = (layers: [number, number, number, number], card: number, width: number, extra: Partial<ResNetArch> = {}) =>
  bottleneck(layers, { cardinality: card, baseWidth: width, ...extra });

const PADDLE: Record<string, PaddleResNet> = {
  ResNet18: { arch: basicVd(L18), keys: legendary },
  ResNet34: { arch: basicVd(L34), keys: legendary },
  ResNet50: { arch: bottleneck(L34), keys: legendary, aliases: ['resnet50'] },
  ResNet101: { arch: bottleneck(L101), keys: legendary, aliases: ['resnet101'] },
  ResNet152: { arch: bottleneck(L152), keys: legendary, aliases: ['resnet152'] },
  ResNet50_vc: { arch: bottleneck(L34, { stem: 'deep32' }), keys: zoo, aliases: ['resnet50c'] },
  ResNet18_vd: { arch: basicVd(L18, resnetD), keys: legendary },
  ResNet34_vd: { arch: basicVd(L34, resnetD), keys: legendary },
  ResNet50_vd: { arch: bottleneck(L34, resnetD), keys: legendary, aliases: ['resnet50d'] },
  ResNet101_vd: { arch: bottleneck(L101, resnetD), keys: legendary, aliases: ['resnet101d'] },
  ResNet152_vd: { arch: bottleneck(L152, resnetD), keys: legendary, aliases: ['resnet152d'] },
  ResNet200_vd: { arch: bottleneck([3, 12, 48, 3], resnetD), keys: legendary },
  ResNeXt50_32x4d: { arch: next(L34, 32, 4), keys: zoo, aliases: ['resnext50_32x4d'] },
  ResNeXt50_vd_32x4d: { arch: next(L34, 32, 4, resnetD), keys: zoo, aliases: ['resnext50d_32x4d'] },
  ResNeXt50_64x4d: { arch: next(L34, 64, 4), keys: zoo },
  ResNeXt50_vd_64x4d: { arch: next(L34, 64, 4, resnetD), keys: zoo },
  ResNeXt101_32x4d: { arch: next(L101, 32, 4), keys: zoo, aliases: ['resnext101_32x4d'] },
  ResNeXt101_vd_32x4d: { arch: next(L101, 32, 4, resnetD), keys: zoo },
  ResNeXt101_64x4d: { arch: next(L101, 64, 4), keys: zoo, aliases: ['resnext101_64x4d'] },
  ResNeXt101_vd_64x4d: { arch: next(L101, 64, 4, resnetD), keys: zoo },
  ResNeXt152_32x4d: { arch: next(L152, 32, 4), keys: zoo },
  ResNeXt152_vd_32x4d: { arch: next(L152, 32, 4, resnetD), keys: zoo },
  ResNeXt152_64x4d: { arch: next(L152, 64, 4), keys: zoo },
  ResNeXt152_vd_64x4d: { arch: next(L152, 64, 4, resnetD), keys: zoo },
  ResNeXt101_32x8d_wsl: { arch: next(L101, 32, 8), keys: 'paddle-wsl', aliases: ['resnext101_32x8d'] },
  // PaddleClas' own MODEL_URLS spells this file without the "d" (its docs link the other spelling).
  ResNeXt101_32x16d_wsl: { arch: next(L101, 32, 16), keys: 'paddle-wsl', file: 'dygraph/ResNeXt101_32x16_wsl_pretrained.pdparams', aliases: ['resnext101_32x16d'] },
  ResNeXt101_32x32d_wsl: { arch: next(L101, 32, 32), keys: 'paddle-wsl', aliases: ['resnext101_32x32d'] },
  ResNeXt101_32x48d_wsl: { arch: next(L101, 32, 48), keys: 'paddle-wsl', aliases: ['resnext101_32x48d'] },
  SE_ResNet18_vd: { arch: basicVd(L18, { ...resnetD, se: 'paddle' }), keys: zoo },
  SE_ResNet34_vd: { arch: basicVd(L34, { ...resnetD, se: 'paddle' }), keys: zoo },
  SE_ResNet50_vd: { arch: bottleneck(L34, { ...resnetD, se: 'paddle' }), keys: zoo },
  SE_ResNeXt50_32x4d: { arch: next(L34, 32, 4, { se: 'paddle' }), keys: zoo, aliases: ['seresnext50_32x4d'] },
  SE_ResNeXt50_vd_32x4d: { arch: next(L34, 32, 4, { stem: 'deep64', avgDown: true, se: 'paddle' }), keys: zoo },
  SE_ResNeXt101_32x4d: { arch: next(L101, 32, 4, { se: 'paddle' }), keys: zoo, aliases: ['seresnext101_32x4d'] },
  // Not Cadene's SENet-154: full-width first 1×1, avg-down shortcuts, padded max-pool (spec §4.5).
  SENet154_vd: { arch: next(L152, 64, 4, { stem: 'deep64', avgDown: true, se: 'paddle' }), keys: zoo },
};

/** Weight-only variants: same architecture as `base`, their own checkpoint and eval size. */
const PADDLE_WEIGHTS: { name: string; base: string; keys: KeyScheme; file?: string; size?: number }[] = [
  { name: 'ResNet34_vd_ssld', base: 'ResNet34_vd', keys: legendary },
  { name: 'ResNet50_vd_ssld', base: 'ResNet50_vd', keys: legendary },
  { name: 'ResNet101_vd_ssld', base: 'ResNet101_vd', keys: legendary },
  // 2.0-era files, linked only from the 2.0–2.2 docs; model-zoo key names.
  { name: 'ResNet50_vd_v2', base: 'ResNet50_vd', keys: zoo },
  { name: 'ResNet50_vd_ssld_v2', base: 'ResNet50_vd', keys: zoo },
  { name: 'Fix_ResNet50_vd_ssld_v2', base: 'ResNet50_vd', keys: zoo, size: 320 },
  { name: 'Fix_ResNeXt101_32x48d_wsl', base: 'ResNeXt101_32x48d_wsl', keys: 'paddle-wsl', size: 320 },
];

function paddleFile(name: string, keys: KeyScheme): string {
  return keys === legendary ? `dygraph/legendary_models/${name}_pretrained.pdparams` : `dygraph/${name}_pretrained.pdparams`;
}

// ---------------------------------------------------------------------------------------------- registrations

export function describeResNet(a: ResNetArch): string {
  const parts = [typeof a.block === 'string' ? a.block : a.block.name, `layers ${a.layers.join('-')}`];
  if ((a.cardinality ?? 1) > 1) parts.push(`${a.cardinality}x${a.baseWidth}d groups`);
  parts.push(`stem ${a.stem ?? '7x7'}`);
  if (a.avgDown) parts.push('avg-down shortcut');
  if (a.se) parts.push(`SE (${a.se})`);
  if (a.stage1Projection) parts.push('stage-1 projection');
  return parts.join(', ');
}

for (const [name, m] of Object.entries(TIMM)) {
  register({
    name,
    family: 'resnet',
    source: 'timm',
    arch: name,
    build: (o) => buildResNet(m.arch, o),
    cfgs: m.cfgs(name),
    aliases: m.aliases ?? [],
    description: describeResNet(m.arch),
  });
}

const firstConv = (a: ResNetArch) => ((a.stem ?? '7x7') === '7x7' ? 'conv1' : 'conv1.0');

for (const [name, m] of Object.entries(PADDLE)) {
  register({
    name,
    family: 'resnet',
    source: 'paddleclas',
    arch: name,
    build: (o) => buildResNet(m.arch, o),
    cfgs: [paddleCfg(name, { file: m.file ?? paddleFile(name, m.keys), keys: m.keys, firstConv: firstConv(m.arch) })],
    aliases: m.aliases ?? [],
    description: describeResNet(m.arch),
  });
}

for (const v of PADDLE_WEIGHTS) {
  const base = PADDLE[v.base]!;
  register({
    name: v.name,
    family: 'resnet',
    source: 'paddleclas',
    arch: v.base,
    build: (o) => buildResNet(base.arch, o),
    cfgs: [
      paddleCfg(v.name, {
        file: v.file ?? paddleFile(v.name, v.keys),
        keys: v.keys,
        crop: v.size,
        resizeShort: v.size,
        firstConv: firstConv(base.arch),
      }),
    ],
    aliases: base.aliases ?? [],
    description: `${describeResNet(base.arch)}; weights ${v.name}`,
  });
}


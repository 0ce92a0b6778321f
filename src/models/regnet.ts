/**
 * RegNetX from the design-space rule (Radosavovic et al., pycls; spec §3): per-block widths
 * u_j = w0 + wa·j, quantized to w0·wm^round(log(u_j/w0)/log(wm)) and to multiples of 8; stages are runs of equal
 * width; group widths are made compatible with the stage widths. Nothing here is a hard-coded width list.
 */
import { Graph } from '../ir/graph.js';
import { roundHalfEven } from '../math.js';
import { classifierHead, convBnAct, dropPathSchedule } from '../layers/common.js';
import { paddleCfg, timmCfg } from './cfg.js';
import { register } from './registry.js';
import type { BuildOptions } from './types.js';

// ---------------------------------------------------------------------------------------------- design space

export interface RegNetParams {
  w0: number;
  wa: number;
  wm: number;
  depth: number;
  groupWidth: number;
  bottleneckRatio?: number;
}

export interface RegNetStage {
  width: number;
  depth: number;
  groupWidth: number;
}

export function regnetStages(p: RegNetParams, quantum = 8): RegNetStage[] {
  const b = p.bottleneckRatio ?? 1;
  const widths: number[] = [];
  for (let j = 0; j < p.depth; j++) {
    const u = p.w0 + p.wa * j;
    const s = roundHalfEven(Math.log(u / p.w0) / Math.log(p.wm));
    widths.push(roundHalfEven((p.w0 * p.wm ** s) / quantum) * quantum);
  }
  const stages: RegNetStage[] = [];
  for (const w of widths) {
    const last = stages[stages.length - 1];
    if (last && last.width === w) last.depth++;
    else stages.push({ width: w, depth: 1, groupWidth: p.groupWidth });
  }
  // Width/group compatibility: the bottleneck width becomes a multiple of the (capped) group width.
  return stages.map((s) => {
    const wb = Math.trunc(s.width * b);
    const gw = Math.min(s.groupWidth, wb);
    const wbq = roundHalfEven(wb / gw) * gw;
    return { width: Math.trunc(wbq / b), depth: s.depth, groupWidth: gw };
  });
}

// ---------------------------------------------------------------------------------------------- model

export function buildRegNet(p: RegNetParams, o: BuildOptions): Graph {
  const g = new Graph();
  let x = g.input('input', ['N', o.inChans, o.inputSize[0], o.inputSize[1]]);
  x = g.markFeature(convBnAct(g, x, 'stem.conv', 'stem.bn', { out: 32, kernel: 3, stride: 2 }), 'stem');
  let c = 32;
  // timm's RegNet stochastic depth: linspace(0, rate, blocks) over all blocks.
  const stages = regnetStages(p);
  const blocks = stages.reduce((a, s) => a + s.depth, 0);
  let index = 0;
  stages.forEach((s, si) => {
    const wb = Math.trunc(s.width * (p.bottleneckRatio ?? 1));
    for (let bi = 0; bi < s.depth; bi++) {
      const path = `s${si + 1}.b${bi + 1}`;
      const stride = bi === 0 ? 2 : 1;
      let y = convBnAct(g, x, `${path}.conv1.conv`, `${path}.conv1.bn`, { out: wb, kernel: 1 });
      y = convBnAct(g, y, `${path}.conv2.conv`, `${path}.conv2.bn`, { out: wb, kernel: 3, stride, groups: wb / s.groupWidth });
      y = convBnAct(g, y, `${path}.conv3.conv`, `${path}.conv3.bn`, { out: s.width, kernel: 1 }, 'none');
      const shortcut = c !== s.width || stride !== 1 ? g.batchNorm(g.conv(x, `${path}.downsample.conv`, { out: s.width, kernel: 1, stride }), `${path}.downsample.bn`) : x;
      y = g.dropPath(y, dropPathSchedule(o.dropPathRate, index++, Math.max(1, blocks - 1)), `${path}.drop_path`);
      x = g.relu(g.addTensors(y, shortcut, path), path);
      c = s.width;
    }
    g.markFeature(x, `s${si + 1}`);
  });
  classifierHead(g, x, 'head.fc', o.numClasses, o.dropRate);
  return g;
}

// ---------------------------------------------------------------------------------------------- configs

/** pycls RegNetX design points; the name's digits are the MFLOPs/100 of the paper. */
export const REGNETX: Record<string, RegNetParams> = {
  regnetx_002: { w0: 24, wa: 36.44, wm: 2.49, groupWidth: 8, depth: 13 },
  regnetx_004: { w0: 24, wa: 24.48, wm: 2.54, groupWidth: 16, depth: 22 },
  regnetx_006: { w0: 48, wa: 36.97, wm: 2.24, groupWidth: 24, depth: 16 },
  regnetx_008: { w0: 56, wa: 35.73, wm: 2.28, groupWidth: 16, depth: 16 },
  regnetx_016: { w0: 80, wa: 34.01, wm: 2.25, groupWidth: 24, depth: 18 },
  regnetx_032: { w0: 88, wa: 26.31, wm: 2.25, groupWidth: 48, depth: 25 },
  regnetx_040: { w0: 96, wa: 38.65, wm: 2.43, groupWidth: 40, depth: 23 },
  regnetx_064: { w0: 184, wa: 60.83, wm: 2.07, groupWidth: 56, depth: 17 },
  regnetx_080: { w0: 80, wa: 49.56, wm: 2.88, groupWidth: 120, depth: 23 },
  regnetx_120: { w0: 168, wa: 73.36, wm: 2.37, groupWidth: 112, depth: 19 },
  regnetx_160: { w0: 216, wa: 55.59, wm: 2.1, groupWidth: 128, depth: 22 },
  regnetx_320: { w0: 320, wa: 69.86, wm: 2.0, groupWidth: 168, depth: 23 },
};

/** PaddleClas names whose weights the seed pages publish (its other RegNet files are not confirmed to exist). */
const PADDLE: Record<string, string> = { regnetx_040: 'RegNetX_4GF' };

const describe = (p: RegNetParams) =>
  `RegNetX w0=${p.w0} wa=${p.wa} wm=${p.wm} depth=${p.depth} group width ${p.groupWidth}: stages ${regnetStages(p)
    .map((s) => `${s.depth}x${s.width}`)
    .join(', ')}`;

// ---------------------------------------------------------------------------------------------- registrations

for (const [name, p] of Object.entries(REGNETX)) {
  const paddle = PADDLE[name];
  register({
    name,
    family: 'regnet',
    source: 'timm',
    arch: name,
    build: (o) => buildRegNet(p, o),
    cfgs: [timmCfg(name, 'pycls_in1k', { firstConv: 'stem.conv', classifier: 'head.fc', license: 'mit' })],
    aliases: paddle ? [paddle] : [],
    description: describe(p),
  });
  if (!paddle) continue;
  register({
    name: paddle,
    family: 'regnet',
    source: 'paddleclas',
    arch: name,
    build: (o) => buildRegNet(p, o),
    cfgs: [paddleCfg(paddle, { file: `dygraph/${paddle}_pretrained.pdparams`, keys: 'paddle-regnet', firstConv: 'stem.conv', classifier: 'head.fc' })],
    aliases: [name],
    description: describe(p),
  });
}

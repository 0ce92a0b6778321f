/**
 * timm's initialisation of each family, for training from scratch (the deterministic He-uniform of
 * src/weights/init.ts is for exporting and benchmarking, not for learning):
 * - ResNet family (ResNet, ResNeXt, SE, Res2Net, ResNeSt): convs kaiming-normal fan_out/ReLU, BatchNorm 1/0 with
 *   the last BatchNorm of every residual block zeroed (zero_init_last), Linear PyTorch's default U(±1/√fan_in);
 * - RegNet: convs normal(0, √(2/fan_out)) with fan_out = k²·out/groups, Linear normal(0, 0.01) and zero bias,
 *   zero_init_last on each block's last BatchNorm;
 * - EfficientNet (`_init_weight_goog`): convs normal(0, √(2/fan_out)) with fan_out = k²·out/groups, Linear
 *   U(±1/√out) and zero bias.
 * - ConvNeXt: convs and Linear trunc_normal(0.02) with zero bias; ViT/DeiT: Linear trunc_normal(0.02), zero bias,
 *   the patch-embedding conv PyTorch's default U(±1/√fan_in); LayerNorm 1/0; tokens, position embeddings,
 *   layer scale and GRN as each declares (Param.init: cls_token N(0, 1e-6), pos_embed trunc_normal(0.02), …).
 * Running statistics start at mean 0, variance 1. Every tensor draws from its own seeded stream.
 */
import type { Graph, Param } from '../ir/graph.js';
import type { WeightMap } from '../onnx/export.js';
import { seedOf } from '../weights/init.js';
import { Rng } from '../util/rng.js';

/** The last BatchNorm weight of each residual block (zero_init_last). */
function lastBlockNorms(graph: Graph): Set<string> {
  const last = new Map<string, string>();
  for (const n of graph.nodes) {
    if (n.op !== 'BatchNormalization') continue;
    const m = /^((?:layer\d+|s\d+)\.(?:\d+|b\d+))\.(.+)$/.exec(n.name);
    if (!m || /downsample|shortcut|conv2\.(bn0|bn1)|se/.test(m[2]!)) continue;
    last.set(m[1]!, n.params[0]!);
  }
  return new Set(last.values());
}

export function timmInit(graph: Graph, family: string, seed = 0): WeightMap {
  const out: WeightMap = new Map();
  const zero = family === 'efficientnet' ? new Set<string>() : lastBlockNorms(graph);
  const groupsOf = new Map<string, number>();
  for (const n of graph.nodes) if (n.op === 'Conv') groupsOf.set(n.params[0]!, (n.attrs['group'] as number) ?? 1);
  for (const p of graph.params.values()) {
    const count = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const rng = new Rng(seedOf(p.name, seed));
    if (family === 'convnext' || family === 'vit' || p.role === 'norm_weight' || p.role === 'norm_bias' || p.role === 'embed') {
      initTransformerLike(p, family, data, rng, graph);
      out.set(p.name, data);
      continue;
    }
    const conv = p.role === 'weight' && p.shape.length === 4;
    const linear = p.role === 'weight' && p.shape.length === 2;
    if (conv) {
      const [o, , kh, kw] = p.shape as [number, number, number, number];
      const groups = family === 'regnet' || family === 'efficientnet' ? (groupsOf.get(p.name) ?? 1) : 1;
      const std = Math.sqrt(2 / ((o * kh * kw) / groups));
      for (let i = 0; i < count; i++) data[i] = std * rng.normal();
    } else if (linear) {
      const [o, i0] = p.shape as [number, number];
      if (family === 'regnet') for (let i = 0; i < count; i++) data[i] = 0.01 * rng.normal();
      else {
        const bound = 1 / Math.sqrt(family === 'efficientnet' ? o : i0);
        for (let i = 0; i < count; i++) data[i] = (2 * rng.next() - 1) * bound;
      }
    } else if (p.role === 'bias') {
      // PyTorch's default for a conv or Linear bias under the ResNet init: U(±1/√fan_in); zero elsewhere.
      const owner = graph.params.get(p.name.replace(/\.bias$/, '.weight'));
      if (owner && (family === 'resnet' || family === 'res2net' || family === 'resnest') && owner.shape.length >= 2) {
        const bound = 1 / Math.sqrt(owner.shape.slice(1).reduce((a, b) => a * b, 1));
        for (let i = 0; i < count; i++) data[i] = (2 * rng.next() - 1) * bound;
      }
    } else if (p.role === 'bn_weight') {
      data.fill(zero.has(p.name) ? 0 : 1);
    } else if (p.role === 'bn_var') {
      data.fill(1);
    }
    out.set(p.name, data);
  }
  return out;
}

/** timm's trunc_normal_(std, a=−2, b=2): a normal redrawn outside ±2 (absolute bounds, as timm calls it). */
function truncNormal(rng: Rng, std: number): number {
  for (;;) {
    const v = std * rng.normal();
    if (v >= -2 && v <= 2) return v;
  }
}

function initTransformerLike(p: Param, family: string, data: Float32Array, rng: Rng, graph: Graph): void {
  const n = data.length;
  if (p.role === 'norm_weight' || p.role === 'bn_weight' || p.role === 'bn_var') data.fill(1);
  else if (p.role === 'embed') {
    const init = p.init ?? { fill: 0 };
    if ('fill' in init) data.fill(init.fill);
    else for (let i = 0; i < n; i++) data[i] = truncNormal(rng, init.std);
  } else if (p.role === 'weight' && family === 'vit' && p.shape.length === 4) {
    const bound = 1 / Math.sqrt(p.shape.slice(1).reduce((a, b) => a * b, 1)); // nn.Conv2d's default
    for (let i = 0; i < n; i++) data[i] = (2 * rng.next() - 1) * bound;
  } else if (p.role === 'bias' && family === 'vit' && p.name === 'patch_embed.proj.bias') {
    const bound = 1 / Math.sqrt(graph.params.get('patch_embed.proj.weight')!.shape.slice(1).reduce((a, b) => a * b, 1));
    for (let i = 0; i < n; i++) data[i] = (2 * rng.next() - 1) * bound;
  } else if (p.role === 'weight') {
    for (let i = 0; i < n; i++) data[i] = truncNormal(rng, 0.02);
  }
  // biases and norm shifts stay 0
}

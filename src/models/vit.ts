/**
 * Vision Transformer and DeiT (timm `vision_transformer.py`, `deit.py`): a patch-embedding conv, a class token
 * (and DeiT's distillation token) prepended, learned position embeddings added, pre-norm blocks of multi-head
 * self-attention (qkv Linear, heads as Reshape/Transpose, q·kᵀ/√d, Softmax, ·v, proj) and a GELU MLP, a final
 * LayerNorm, and the class token's head. The graph is built for the input size (timm's `img_size`): another
 * size has another grid and another `pos_embed` length; a checkpoint for another grid is resampled on load.
 * Outputs: `logits`, `features` (the pooled token, forward_head(pre_logits=True)) and `hidden_state` (the last
 * hidden state, forward_features); distilled models also give each head's logits.
 */
import { Graph } from '../ir/graph.js';
import { dropPathSchedule } from '../layers/common.js';
import { resamplePosEmbed } from '../layers/pos-embed.js';
import type { HostTensor } from '../weights/tensor.js';
import { paddleCfg, timmCfg } from './cfg.js';
import { register } from './registry.js';
import { IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD, type BuildOptions, type PretrainedCfg } from './types.js';

export interface ViTArch {
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  /** DeiT's distillation token and second head. */
  distilled: boolean;
  /** MLP width / dim (4; PaddleClas' ViT_small: 3). */
  mlpRatio?: number;
  /** Bias on the qkv Linear (timm: yes; PaddleClas' ViT_small: no). */
  qkvBias?: boolean;
  /** LayerNorm eps (1e-6; PaddleClas' ViT_small: 1e-5). */
  eps?: number;
  /** Attention scale when not 1/√head_dim (PaddleClas' ViT_small: 768^−0.5). */
  qkScale?: number;
}

function attention(g: Graph, x: string, p: string, a: ViTArch): string {
  const [, len] = g.shape(x) as [unknown, number];
  const hd = a.dim / a.heads;
  let qkv = g.reshape(g.dense(x, `${p}.qkv`, 3 * a.dim, a.qkvBias ?? true), [len, 3, a.heads, hd], p);
  qkv = g.transpose(qkv, [0, 2, 3, 1, 4], p); // [N, 3, heads, L, hd]: the batch stays first
  const [q, k, v] = g.split(qkv, [1, 1, 1], 1, p).map((t) => g.reshape(t, [a.heads, len, hd], p)) as [string, string, string];
  const scores = g.matmul(g.scale(q, a.qkScale ?? hd ** -0.5, p), g.transpose(k, [0, 1, 3, 2], p), `${p}.qk`);
  const out = g.matmul(g.softmax(scores, 3, p), v, `${p}.av`);
  return g.dense(g.reshape(g.transpose(out, [0, 2, 1, 3], p), [len, a.dim], p), `${p}.proj`, a.dim);
}

function block(g: Graph, x: string, p: string, a: ViTArch, dropPath: number): string {
  const eps = a.eps ?? 1e-6;
  const attn = attention(g, g.layerNorm(x, `${p}.norm1`, eps), `${p}.attn`, a);
  x = g.addTensors(x, g.dropPath(attn, dropPath, `${p}.drop_path1`), p);
  const h = g.gelu(g.dense(g.layerNorm(x, `${p}.norm2`, eps), `${p}.mlp.fc1`, (a.mlpRatio ?? 4) * a.dim), `${p}.mlp.act`);
  return g.addTensors(x, g.dropPath(g.dense(h, `${p}.mlp.fc2`, a.dim), dropPath, `${p}.drop_path2`), p);
}

export function buildViT(a: ViTArch, o: BuildOptions): Graph {
  const g = new Graph();
  const D = a.dim;
  let x = g.input('input', ['N', o.inChans, o.inputSize[0], o.inputSize[1]]);
  const [gh, gw] = o.inputSize.map((s) => Math.floor(s / a.patch)) as [number, number];
  const prefix = a.distilled ? 2 : 1;
  const len = prefix + gh * gw;
  // The model's own parameters come first in its state_dict: cls_token, pos_embed, dist_token.
  g.reserve([
    { name: 'cls_token', shape: [1, 1, D], role: 'embed' },
    { name: 'pos_embed', shape: [1, len, D], role: 'embed' },
    ...(a.distilled ? [{ name: 'dist_token', shape: [1, 1, D], role: 'embed' as const }] : []),
  ]);
  x = g.conv(x, 'patch_embed.proj', { out: D, kernel: a.patch, stride: a.patch, pad: 0, bias: true });
  x = g.transpose(g.reshape(x, [D, gh * gw], 'patch_embed'), [0, 2, 1], 'patch_embed'); // flatten(2).transpose(1, 2)
  const tokens = [g.expandBatch(g.parameter('cls_token', [1, 1, D], [1, 1, D], { std: 1e-6 }), x, 'cls_token')];
  if (a.distilled) tokens.push(g.expandBatch(g.parameter('dist_token', [1, 1, D], [1, 1, D], { std: 0.02 }), x, 'dist_token'));
  x = g.concat([...tokens, x], 1, 'pos_embed');
  x = g.addTensors(x, g.parameter('pos_embed', [1, len, D], [1, len, D], { std: 0.02 }), 'pos_embed');
  for (let i = 0; i < a.depth; i++) x = block(g, x, `blocks.${i}`, a, dropPathSchedule(o.dropPathRate, i, Math.max(1, a.depth - 1)));
  x = g.output(g.layerNorm(x, 'norm', a.eps ?? 1e-6), 'hidden_state');
  const [cls, dist] = g.split(x, a.distilled ? [1, 1, gh * gw] : [1, gh * gw], 1, 'head').map((t, i) => (i < prefix ? g.reshape(t, [D], 'head') : t));
  if (!a.distilled) {
    g.output(g.linear(g.dropout(g.output(cls!, 'features'), o.dropRate ?? 0, 'head_drop'), 'head', o.numClasses), 'logits');
    return g;
  }
  // DeiT distilled: the two heads averaged (timm's inference and non-distilled training); each head also exposed.
  // timm's distilled forward_head has no head_drop: drop_rate does nothing there either.
  const head = g.output(g.linear(cls!, 'head', o.numClasses), 'head_logits');
  const headDist = g.output(g.linear(dist!, 'head_dist', o.numClasses), 'head_dist_logits');
  g.output(g.scale(g.addTensors(cls!, dist!, 'head'), 0.5, 'head'), 'features');
  g.output(g.scale(g.addTensors(head, headDist, 'head'), 0.5, 'head'), 'logits');
  return g;
}

/** A checkpoint's pos_embed for another grid, resampled as timm's checkpoint filter does (bicubic, antialias). */
function adaptPosEmbed(tensors: Map<string, HostTensor>, graph: Graph): void {
  const t = tensors.get('pos_embed');
  const want = graph.params.get('pos_embed')!.shape;
  const conv = graph.nodes.find((n) => n.name === 'patch_embed.proj')!;
  const [, , gh, gw] = graph.shape(conv.outputs[0]!) as [unknown, number, number, number];
  // timm resamples unless the token count matches and the new grid is square (the stored grid always is).
  if (!t || (t.shape[1] === want[1] && gh === gw)) return;
  const prefix = graph.params.has('dist_token') ? 2 : 1;
  tensors.set('pos_embed', resamplePosEmbed(t, [gh, gw], prefix));
}

// ---------------------------------------------------------------------------------------------- configs

const SIZES: Record<string, { dim: number; depth: number; heads: number }> = {
  tiny: { dim: 192, depth: 12, heads: 3 },
  small: { dim: 384, depth: 12, heads: 6 },
  base: { dim: 768, depth: 12, heads: 12 },
  large: { dim: 1024, depth: 24, heads: 16 },
};

type Args = NonNullable<Parameters<typeof timmCfg>[2]>;
/** timm's ViT _cfg: crop 0.9, bicubic, mean/std 0.5 (the JAX ports and augreg); DeiT uses ImageNet's. */
const vitCfg = (arch: string, tag: string, size: number, a: Args = {}): PretrainedCfg =>
  timmCfg(arch, tag, { size, cropPct: size === 384 ? 1.0 : 0.9, mean: INCEPTION_MEAN, std: INCEPTION_STD, firstConv: 'patch_embed.proj', classifier: 'head', license: 'apache-2.0', ...a });
const deitCfg = (arch: string, size: number): PretrainedCfg =>
  timmCfg(arch, 'fb_in1k', { size, cropPct: size === 384 ? 1.0 : 0.9, firstConv: 'patch_embed.proj', classifier: 'head', license: 'apache-2.0' });

/** timm 0.9.16's ImageNet-1k tags per ViT (default first); in21k / num_classes 0 tags are left out. */
const VIT_TAGS: Record<string, string[]> = {
  vit_tiny_patch16_224: ['augreg_in21k_ft_in1k'],
  vit_tiny_patch16_384: ['augreg_in21k_ft_in1k'],
  vit_small_patch16_224: ['augreg_in21k_ft_in1k', 'augreg_in1k'],
  vit_small_patch16_384: ['augreg_in21k_ft_in1k', 'augreg_in1k'],
  vit_base_patch16_224: ['augreg2_in21k_ft_in1k', 'augreg_in21k_ft_in1k', 'orig_in21k_ft_in1k', 'augreg_in1k', 'sam_in1k'],
  vit_base_patch16_384: ['augreg_in21k_ft_in1k', 'orig_in21k_ft_in1k', 'augreg_in1k'],
  vit_base_patch32_224: ['augreg_in21k_ft_in1k', 'augreg_in1k', 'sam_in1k'],
  vit_base_patch32_384: ['augreg_in21k_ft_in1k', 'augreg_in1k'],
  vit_large_patch16_224: ['augreg_in21k_ft_in1k'],
  vit_large_patch16_384: ['augreg_in21k_ft_in1k'],
  vit_large_patch32_384: ['orig_in21k_ft_in1k'],
};

/** PaddleClas names for the same architectures (ppcls/arch/backbone/model_zoo/vision_transformer.py, deit). */
const PADDLE_ALIASES: Record<string, string> = {
  vit_base_patch16_224: 'ViT_base_patch16_224',
  vit_base_patch16_384: 'ViT_base_patch16_384',
  vit_base_patch32_384: 'ViT_base_patch32_384',
  vit_large_patch16_224: 'ViT_large_patch16_224',
  vit_large_patch16_384: 'ViT_large_patch16_384',
  vit_large_patch32_384: 'ViT_large_patch32_384',
  deit_tiny_patch16_224: 'DeiT_tiny_patch16_224',
  deit_small_patch16_224: 'DeiT_small_patch16_224',
  deit_base_patch16_224: 'DeiT_base_patch16_224',
  deit_base_patch16_384: 'DeiT_base_patch16_384',
  deit_tiny_distilled_patch16_224: 'DeiT_tiny_distilled_patch16_224',
  deit_small_distilled_patch16_224: 'DeiT_small_distilled_patch16_224',
  deit_base_distilled_patch16_224: 'DeiT_base_distilled_patch16_224',
  deit_base_distilled_patch16_384: 'DeiT_base_distilled_patch16_384',
};

const describe = (a: ViTArch) =>
  `patch ${a.patch}, dim ${a.dim}, depth ${a.depth}, ${a.heads} heads, MLP x${a.mlpRatio ?? 4}${a.qkvBias === false ? ', no qkv bias' : ''}` +
  `${a.distilled ? ', class + distillation tokens, two heads averaged' : ', class token'}, LayerNorm eps ${a.eps ?? 1e-6}, exact GELU`;

function registerViT(name: string, a: ViTArch, cfgs: PretrainedCfg[], source: 'timm' | 'paddleclas' = 'timm', aliases = PADDLE_ALIASES[name] ? [PADDLE_ALIASES[name]] : []): void {
  register({
    name,
    family: 'vit',
    source,
    arch: name,
    build: (o: BuildOptions) => buildViT(a, o),
    adaptCheckpoint: adaptPosEmbed,
    cfgs,
    aliases,
    description: describe(a),
  });
}

// ---------------------------------------------------------------------------------------------- registrations

for (const [name, tags] of Object.entries(VIT_TAGS)) {
  const m = /^vit_(\w+)_patch(\d+)_(\d+)$/.exec(name)!;
  const size = Number(m[3]);
  registerViT(name, { ...SIZES[m[1]!]!, patch: Number(m[2]), distilled: false }, tags.map((t) => vitCfg(name, t, size)));
}
for (const [v, size] of [['tiny', 224], ['small', 224], ['base', 224], ['base', 384]] as const) {
  for (const distilled of [false, true]) {
    const name = `deit_${v}${distilled ? '_distilled' : ''}_patch16_${size}`;
    const cfg = deitCfg(name, size);
    registerViT(name, { ...SIZES[v]!, patch: 16, distilled }, [distilled ? { ...cfg, extraClassifiers: ['head_dist'] } : cfg]);
  }
}

// PaddleClas: the same architectures under its names (Linear weights stored [in, out]: key map 'paddle-vit'),
// its eval transforms (ViT: OpenCV bilinear short side, mean/std 0.5; DeiT: PIL bicubic, ImageNet mean/std).
for (const [timmName, paddleName] of Object.entries(PADDLE_ALIASES)) {
  const m = /^(vit|deit)_(\w+?)(_distilled)?_patch(\d+)_(\d+)$/.exec(timmName)!;
  const size = Number(m[5]);
  const deit = m[1] === 'deit';
  const base = paddleCfg(paddleName, { crop: size, resizeShort: size === 384 ? (deit ? 438 : 384) : 256, file: `dygraph/${paddleName}_pretrained.pdparams`, keys: 'paddle-vit', firstConv: 'patch_embed.proj', classifier: 'head' });
  const cfg: PretrainedCfg = deit
    ? { ...base, interpolation: 'bicubic', resizeBackend: 'pil', mean: IMAGENET_MEAN, std: IMAGENET_STD, ...(m[3] ? { extraClassifiers: ['head_dist'] } : {}) }
    : { ...base, mean: INCEPTION_MEAN, std: INCEPTION_STD };
  registerViT(paddleName, { ...SIZES[m[2]!]!, patch: Number(m[4]), distilled: !!m[3] }, [cfg], 'paddleclas', [timmName]);
}

// PaddleClas' ViT_small_patch16_224 is not timm's: the first timm "small" (dim 768, depth 8, 8 heads, MLP ×3,
// no qkv bias, scale 768^−0.5, LayerNorm eps 1e-5).
registerViT(
  'ViT_small_patch16_224',
  { patch: 16, dim: 768, depth: 8, heads: 8, distilled: false, mlpRatio: 3, qkvBias: false, eps: 1e-5, qkScale: 768 ** -0.5 },
  [{ ...paddleCfg('ViT_small_patch16_224', { file: 'dygraph/ViT_small_patch16_224_pretrained.pdparams', keys: 'paddle-vit', firstConv: 'patch_embed.proj', classifier: 'head' }), mean: INCEPTION_MEAN, std: INCEPTION_STD }],
  'paddleclas',
  [],
);

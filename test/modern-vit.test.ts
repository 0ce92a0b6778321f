/**
 * ConvNeXt V1/V2 and ViT/DeiT: gradient parity with timm on ../shared/grad-fixtures-modern through `tsimm grad`
 * (loss, logits, every gradient's norm and probes, one SGD step), plus what the fixtures do not cover: another
 * input size (a ViT at another grid, timm's img_size), another batch and class count, checked against the same
 * model's own ONNX graph built independently op by op (no fixture), counts, features and pos_embed resampling.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createModel, type Model } from '../src/model.js';
import { timmInit } from '../src/train/init.js';
import { Trainer } from '../src/train/trainer.js';
import { Graph } from '../src/ir/graph.js';
import { initWeights } from '../src/weights/init.js';
import { buildConvNeXt } from '../src/models/convnext.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { buildOnnx, concatChunks } from '../src/onnx/export.js';
import { detectScheme, mapKeys } from '../src/weights/keymaps.js';
import type { HostTensor } from '../src/weights/tensor.js';
import { resamplePosEmbed, resizeBicubic } from '../src/layers/pos-embed.js';
import { saveSafetensors } from '../src/node/safetensors.js';
import { fixtureInput } from './helpers/fixtures.js';
import { GRAD_FIXTURES_MODERN as MODERN, NO_GRAD_FIXTURES_MODERN as NO_MODERN, runGradCase } from './helpers/grad-fixtures.js';
import { describeOrSkip } from './helpers/skip.js';

const CASES = ['convnext_atto_64x2', 'convnextv2_atto_64x2', 'vit_tiny_patch16_224_64x2', 'deit_tiny_distilled_patch16_224_64x2_c10'];

const tmp = mkdtempSync(join(tmpdir(), 'tsimm-modern-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describeOrSkip('grad fixtures: ConvNeXt V1/V2, ViT, DeiT (tsimm grad vs timm)', NO_MODERN, () => {
  for (const name of CASES) {
    for (const mode of ['eval', 'train'] as const) it(`${name} (${mode}): loss, logits, every gradient, one SGD step`, (t) => {
      const { checks } = runGradCase(tmp, name, mode, MODERN);
      const worst = checks.reduce((a, b) => (b.strict > a.strict ? b : a));
      t.diagnostic(`${name} ${mode}: ${checks.length} checks; worst ${worst.what} at ${worst.strict.toFixed(3)} of the README's strict tolerance`);
      for (const k of checks) assert.ok(k.strict <= 1, `${name}: ${k.what} is ${k.strict.toFixed(2)}× its tolerance`);
    });
  }
});

describe('ViT / ConvNeXt shapes, sizes and counts', () => {
  it('a ViT built for another size has that grid (timm img_size) and runs at batch 3 with 10 classes', async () => {
    const m = createModel('vit_tiny_patch16_224', { inputSize: 64, numClasses: 10 });
    assert.deepEqual(m.parameters().find((p) => p.name === 'pos_embed')!.shape, [1, 17, 192]);
    m.initWeights(3);
    const out = await m.run(fixtureInput([3, 3, 64, 64], 2));
    assert.deepEqual(out.logits.shape, [3, 10]);
    assert.deepEqual(out.features.shape, [3, 192]);
    assert.ok(out.logits.data.every(Number.isFinite));
  });

  it('counts equal timm parameter counts', () => {
    const expected: Record<string, number> = {
      vit_tiny_patch16_224: 5_717_416,
      deit_tiny_distilled_patch16_224: 5_910_800,
      convnext_atto: 3_695_520,
      convnextv2_atto: 3_708_400,
    };
    for (const [name, n] of Object.entries(expected)) assert.equal(createModel(name).counts().params, n, name);
  });

  it('attention MACs: q·kᵀ and attn·v are counted (fvcore/timm convention)', () => {
    const c = createModel('vit_tiny_patch16_224').counts();
    const qk = c.layers.filter((l) => l.name === 'blocks.0.attn.qk');
    assert.equal(qk.length, 1);
    assert.equal(qk[0]!.macs, 3 * 197 * 197 * 64);
  });

  it('ConvNeXt features_only returns the four stages', async () => {
    const m = createModel('convnext_atto', { featuresOnly: true, inputSize: 64 });
    assert.deepEqual(m.featureInfo.map((f) => [f.channels, f.reduction]), [[40, 4], [80, 8], [160, 16], [320, 32]]);
  });

  it('pos_embed resampling keeps prefix tokens; identity size is exact; plain bicubic reproduces a linear ramp', () => {
    const C = 2;
    const grid = 4;
    const data = new Float32Array((1 + grid * grid) * C);
    for (let i = 0; i < data.length; i++) data[i] = i;
    const same = resamplePosEmbed({ shape: [1, 1 + grid * grid, C], data }, [grid, grid], 1, false);
    assert.deepEqual(Array.from(same.data), Array.from(data));
    const up = resamplePosEmbed({ shape: [1, 1 + grid * grid, C], data }, [6, 6], 1);
    assert.deepEqual(up.shape, [1, 37, C]);
    assert.deepEqual(Array.from(up.data.subarray(0, C)), [0, 1]);
    // PyTorch's antialiased kernel (a = −0.5) reproduces a linear ramp inside the border; both keep constants.
    const ramp = Float32Array.from({ length: 8 }, (_, i) => i);
    const r = resizeBicubic(ramp, 1, 8, 1, 1, 16, true);
    for (let x = 4; x < 12; x++) assert.ok(Math.abs(r[x]! - ((x + 0.5) / 2 - 0.5)) < 1e-5, `x=${x}: ${r[x]}`);
    for (const aa of [false, true]) assert.ok(resizeBicubic(new Float32Array(64).fill(2.5), 8, 8, 1, 5, 13, aa).every((v) => Math.abs(v - 2.5) < 1e-6));
    // Plain bicubic (a = −0.75) at x = 4 of 8 → 16: source 1.75, taps 0..3 with Keys' weights for t = 0.75.
    const p = resizeBicubic(ramp, 1, 8, 1, 1, 16, false);
    assert.ok(Math.abs(p[4]! - 1.703125) < 1e-6, `${p[4]}`);
  });
});

/** Paddle Linear weights are [in, out]. */
function t2(t: HostTensor): HostTensor {
  const [r, c] = t.shape as [number, number];
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j]!;
  return { shape: [c, r], data: out };
}

/** Our weights under PaddleClas' names (its module tree, written from ppcls' convnext.py), Linear transposed. */
function asPaddleConvNeXt(m: Model): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of m.stateDict()) {
    let pk = k
      .replace(/^stem\.(\d)\./, 'downsample_layers.0.$1.')
      .replace(/^stages\.(\d)\.downsample\.(\d)\./, 'downsample_layers.$1.$2.')
      .replace(/^stages\.(\d)\.blocks\.(\d+)\./, 'stages.$1.$2.')
      .replace('.conv_dw.', '.dwconv.')
      .replace('.mlp.fc', '.pwconv')
      .replace(/^head\.norm\./, 'norm.')
      .replace(/^head\.fc\./, 'head.');
    if (pk === k && !k.startsWith('stages.')) pk = `?${k}`;
    out.set(pk, t.shape.length === 2 ? t2(t) : t);
  }
  return out;
}

describe('PaddleClas names and .pdparams key maps', () => {
  it('ConvNeXt_tiny: FB layout → timm keys, Linear transposed, every shape checked; scheme detected from the keys', () => {
    const ours = createModel('ConvNeXt_tiny', { inputSize: 32 }).initWeights(5);
    const paddle = asPaddleConvNeXt(ours);
    assert.equal(detectScheme([...paddle.keys()]), 'paddle-convnext');
    const { tensors, unmapped } = mapKeys(paddle, 'paddle-convnext', ours.fullGraph);
    assert.deepEqual(unmapped, []);
    const m = createModel('ConvNeXt_tiny', { inputSize: 32 }).setWeights(tensors);
    for (const p of ours.parameters()) assert.deepEqual(m.weights!.get(p.name), ours.weights!.get(p.name), p.name);
    assert.equal(m.counts().params, createModel('convnext_tiny').counts().params);
  });

  it('DeiT_tiny_distilled_patch16_224 and ViT_base_patch16_224: timm names with Linear [in, out]', () => {
    for (const name of ['DeiT_tiny_distilled_patch16_224', 'ViT_small_patch16_224']) {
      const ours = createModel(name, { inputSize: 32 }).initWeights(6);
      const paddle = new Map([...ours.stateDict()].map(([k, t]) => [k, t.shape.length === 2 ? t2(t) : t]));
      const { tensors, unmapped } = mapKeys(paddle, 'paddle-vit', ours.fullGraph);
      assert.deepEqual(unmapped, []);
      const m = createModel(name, { inputSize: 32 }).setWeights(tensors);
      for (const p of ours.parameters()) assert.deepEqual(m.weights!.get(p.name), ours.weights!.get(p.name), `${name} ${p.name}`);
    }
    // Untransposed Linear weights of a non-square layer fail the shape check, naming the tensor.
    const deit = createModel('DeiT_tiny_distilled_patch16_224', { inputSize: 32 }).initWeights(6);
    assert.throws(() => createModel('DeiT_tiny_distilled_patch16_224', { inputSize: 32 }).setWeights(mapKeys(deit.stateDict(), 'paddle-vit', deit.fullGraph).tensors), /qkv\.weight/);
  });

  it("PaddleClas' ViT_small_patch16_224 is the first timm small (768 wide, depth 8, MLP ×3, no qkv bias)", () => {
    const p = createModel('ViT_small_patch16_224').parameters();
    assert.deepEqual(p.find((x) => x.name === 'blocks.0.mlp.fc1.weight')!.shape, [2304, 768]);
    assert.ok(!p.some((x) => x.name === 'blocks.0.attn.qkv.bias'));
    assert.ok(!p.some((x) => x.name.startsWith('blocks.8.')));
  });

  it('a checkpoint for the 14×14 grid loads into a 4×4 build with pos_embed resampled, prefix tokens kept', () => {
    const src = createModel('deit_tiny_distilled_patch16_224').initWeights(7);
    const file = join(tmp, 'deit224.safetensors');
    saveSafetensors(file, src.stateDict());
    const m = createModel('deit_tiny_distilled_patch16_224', { inputSize: 64 }).loadCheckpoint(file);
    const pe = m.weights!.get('pos_embed')!;
    assert.equal(pe.length, 18 * 192);
    assert.deepEqual(Array.from(pe.subarray(0, 2 * 192)), Array.from(src.weights!.get('pos_embed')!.subarray(0, 2 * 192)));    // Fine-tuning to 10 classes: both heads (timm's classifier tuple) are re-initialised, the rest loads.
    const ft = createModel('deit_tiny_distilled_patch16_224', { inputSize: 64, numClasses: 10 }).loadCheckpoint(file);
    assert.equal(ft.weights!.get('head_dist.weight')!.length, 10 * 192);
    assert.deepEqual(ft.weights!.get('blocks.0.attn.qkv.weight'), src.weights!.get('blocks.0.attn.qkv.weight'));
  });
});

describe("timm's init for training from scratch", () => {
  const stats = (a: Float32Array) => {
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    return { mean, std: Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length) };
  };
  it('ViT: pos_embed trunc_normal(.02), cls_token N(0, 1e-6), Linear trunc_normal(.02) with zero bias, LayerNorm 1/0', () => {
    const m = createModel('deit_tiny_distilled_patch16_224', { inputSize: 64, numClasses: 10 });
    const w = timmInit(m.fullGraph, m.entry.family, 1);
    assert.ok(Math.abs(stats(w.get('pos_embed')!).std - 0.02) < 0.002);
    assert.ok(stats(w.get('cls_token')!).std < 3e-6 && stats(w.get('cls_token')!).std > 0);
    assert.ok(Math.abs(stats(w.get('dist_token')!).std - 0.02) < 0.006);
    assert.ok(Math.abs(stats(w.get('blocks.0.attn.qkv.weight')!).std - 0.02) < 0.001);
    assert.ok(w.get('blocks.0.attn.qkv.bias')!.every((v) => v === 0));
    assert.ok(w.get('blocks.0.norm1.weight')!.every((v) => v === 1) && w.get('norm.bias')!.every((v) => v === 0));
  });
  it('ConvNeXt: layer scale at ls_init_value 1e-6, GRN at 0, convs trunc_normal(.02)', () => {
    const v1 = createModel('convnext_atto', { inputSize: 32 });
    const w1 = timmInit(v1.fullGraph, 'convnext', 1);
    assert.ok(w1.get('stages.0.blocks.0.gamma')!.every((v) => v === Math.fround(1e-6)));
    assert.ok(Math.abs(stats(w1.get('stages.2.blocks.0.mlp.fc1.weight')!).std - 0.02) < 0.001);
    const v2 = createModel('convnextv2_atto', { inputSize: 32 });
    const w2 = timmInit(v2.fullGraph, 'convnext', 1);
    assert.ok(w2.get('stages.0.blocks.0.mlp.grn.weight')!.every((v) => v === 0));
  });
});

describe('backward rules of the new ops against central differences', () => {
  /** Every new op once, in the layouts the fixtures do not reach (GRN channels-last, tanh GELU, 4-D Linear). */
  function tinyNet(): Graph {
    const g = new Graph();
    let x = g.input('input', ['N', 3, 8, 8]);
    x = g.conv(x, 'stem', { out: 8, kernel: 2, stride: 2, pad: 0, bias: true });
    x = g.grn(x, 'grn_cf', 1);
    x = g.layerNorm(g.transpose(x, [0, 2, 3, 1]), 'ln', 1e-6);
    x = g.gelu(g.dense(x, 'fc1', 16), 'act', 'tanh');
    x = g.grn(x, 'grn_cl', 3);
    x = g.gelu(g.dense(x, 'fc2', 8));
    x = g.mul(x, g.parameter('gamma', [8], [1, 1, 1, 8], { fill: 0.5 }));
    x = g.reshape(x, [16, 8]);
    x = g.concat([g.expandBatch(g.parameter('cls', [1, 1, 8], [1, 1, 8], { std: 0.5 }), x), x], 1);
    x = g.addTensors(x, g.parameter('pos', [1, 17, 8], [1, 17, 8], { std: 0.5 }));
    const a = g.softmax(g.matmul(g.scale(g.reshape(x, [1, 17, 8]), 0.3), g.transpose(g.reshape(x, [1, 17, 8]), [0, 1, 3, 2])), 3);
    x = g.reshape(g.matmul(a, g.reshape(g.dense(x, 'v', 8, false), [1, 17, 8])), [17, 8]);
    const [cls] = g.split(x, [1, 16], 1);
    g.output(g.linear(g.reshape(cls!, [8]), 'head', 5), 'logits');
    return g;
  }

  it('every parameter: analytic gradient · random direction = central difference of the loss', async (t) => {
    const g = tinyNet();
    const weights = initWeights(g, 4);
    for (const [k, w] of weights) if (/grn|gamma/.test(k)) w.forEach((_, i) => (w[i] = 0.3 + 0.1 * Math.sin(i)));
    const tr = new Trainer(g, weights, { batchNorm: 'frozen', labelSmoothing: 0 });
    const x = fixtureInput([2, 3, 8, 8], 5);
    const targets = [1, 3];
    const { grads } = await tr.forwardBackward(x, targets);
    let worst = 0;
    for (const [name, grad] of grads) {
      const w = weights.get(name)!;
      const d = Float32Array.from(w, (_, i) => Math.sign(Math.sin(i * 12.9898 + name.length)) || 1);
      const analytic = grad.reduce((s, v, i) => s + v * d[i]!, 0);
      const eps = 1e-2;
      const orig = Float32Array.from(w);
      w.forEach((v, i) => (w[i] = orig[i]! + eps * d[i]!));
      const up = (await tr.forwardBackward(x, targets)).loss;
      w.forEach((v, i) => (w[i] = orig[i]! - eps * d[i]!));
      const down = (await tr.forwardBackward(x, targets)).loss;
      w.set(orig);
      const numeric = (up - down) / (2 * eps);
      const err = Math.abs(numeric - analytic) / Math.max(1e-3, Math.abs(analytic));
      worst = Math.max(worst, err);
      // float32 central differences land within 2.2e-3 here; a 5 % slip in one rule's derivative gives ≥ 1e-2.
      assert.ok(err < 6e-3, `${name}: analytic ${analytic} vs numeric ${numeric}`);
    }
    t.diagnostic(`${grads.size} tensors, worst relative difference ${worst.toExponential(2)}`);
    await tr.release();
  });
});

describe('ConvNeXt: the NHWC Linear block equals the NCHW 1×1-conv block (conv_mlp) on the same weights', () => {
  for (const grn of [false, true]) {
    it(grn ? 'V2 (GRN channels-last vs channels-first)' : 'V1 (layer scale)', async () => {
      const arch = { depths: [1, 2, 1, 1], dims: [8, 16, 24, 32], grn, ls: grn ? null : 0.7 };
      const o = { numClasses: 7, inChans: 3, inputSize: [64, 64] as [number, number] };
      const cl = buildConvNeXt({ ...arch, convMlp: false }, o);
      const cf = buildConvNeXt({ ...arch, convMlp: true }, o);
      const w = initWeights(cl, 9);
      for (const [k, v] of w) if (/grn/.test(k)) v.forEach((_, i) => (v[i] = 0.2 + 0.05 * i));
      const run = async (g: Graph) => {
        const m = buildOnnx(g, w);
        return (await runSession(await createSession(concatChunks(m.chunks, m.byteLength)), fixtureInput([3, 3, 64, 64], 8)))['logits']!.data;
      };
      const a = await run(cl);
      const b = await run(cf); // the 1×1 conv weights [out, in, 1, 1] hold the Linear's [out, in] values as they are
      const scale = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5 * Math.max(1, scale)), 'same logits');
    });
  }
});

describe("stochastic depth and head dropout (timm's drop_path_rate and drop_rate; training graphs only)", () => {
  const reg = { dropPathRate: 0.2, dropRate: 0.1 };
  const nodes = (name: string, op: string, o: { dropPathRate?: number; dropRate?: number } = reg) => createModel(name, { inputSize: 32, ...o }).graph.nodes.filter((n) => n.op === op);

  it('ConvNeXt: one DropPath per block, linear over all blocks from 0; dropout as head.drop before head.fc', () => {
    const dp = nodes('convnext_atto', 'DropPath'); // depths 2, 2, 6, 2: 12 blocks, the first at rate 0 (no node)
    assert.equal(dp.length, 11);
    assert.equal(dp[0]!.name, 'stages.0.blocks.1.drop_path');
    assert.ok(Math.abs((dp[0]!.attrs['rate'] as number) - 0.2 / 11) < 1e-12);
    assert.equal(dp.at(-1)!.name, 'stages.3.blocks.1.drop_path');
    assert.ok(Math.abs((dp.at(-1)!.attrs['rate'] as number) - 0.2) < 1e-12);
    assert.deepEqual(nodes('convnext_atto', 'Dropout').map((n) => n.name), ['head.drop']);
    assert.equal(nodes('convnext_atto', 'DropPath', {}).length, 0, 'rate 0 adds no node');
  });

  it('ViT: drop_path1 and drop_path2 in every block after the first; head_drop; distilled DeiT has no head dropout (as timm)', () => {
    const dp = nodes('vit_tiny_patch16_224', 'DropPath');
    assert.equal(dp.length, 2 * 11);
    assert.deepEqual(dp.slice(-2).map((n) => [n.name, n.attrs['rate']]), [['blocks.11.drop_path1', 0.2], ['blocks.11.drop_path2', 0.2]]);
    assert.deepEqual(nodes('vit_tiny_patch16_224', 'Dropout').map((n) => n.name), ['head_drop']);
    assert.equal(nodes('deit_tiny_distilled_patch16_224', 'Dropout').length, 0);
  });

  it('identity at inference; in training the masks change the loss and follow the step keys', async () => {
    for (const name of ['convnext_atto', 'vit_tiny_patch16_224']) {
      const plain = createModel(name, { inputSize: 32, numClasses: 5 });
      plain.weights = timmInit(plain.fullGraph, plain.entry.family, 3);
      const reg2 = createModel(name, { inputSize: 32, numClasses: 5, ...reg });
      reg2.weights = plain.weights;
      const x = { shape: [2, 3, 32, 32], data: Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i)) };
      assert.deepEqual((await reg2.run(x)).logits.data, (await plain.run(x)).logits.data, name);
      const t = reg2.trainer();
      const tp = plain.trainer();
      assert.equal(t.graph.masks!.length, nodes(name, 'DropPath').length + nodes(name, 'Dropout').length);
      const a = await t.forwardBackward(x, [0, 3], { maskKeys: [1, 0, 5] });
      const b = await t.forwardBackward(x, [0, 3], { maskKeys: [1, 0, 5] });
      const c = await t.forwardBackward(x, [0, 3], { maskKeys: [1, 0, 6] });
      const p = await tp.forwardBackward(x, [0, 3]);
      assert.equal(a.loss, b.loss, name);
      assert.notEqual(a.loss, c.loss, `${name}: other keys draw other masks`);
      assert.notEqual(a.loss, p.loss, name);
      assert.ok(Number.isFinite(a.loss));
      await t.release();
      await tp.release();
    }
  });
});

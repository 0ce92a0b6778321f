/**
 * Res2Net, ResNeSt, RegNetX, EfficientNet: counts against the spec's golden numbers
 * (shared/spec/arch-resnest-regnet-effnet.md §5, arch-resnet-family.md §6) and the behaviours where
 * PaddleClas and timm differ.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel } from '../src/model.js';
import { samePads } from '../src/models/efficientnet.js';
import { roundHalfEven } from '../src/math.js';
import { regnetStages, REGNETX } from '../src/models/regnet.js';
import { createSession, runSession } from '../src/runtime/session.js';

/** Exact params; MACs (conv + FC) in G at the model's default size, to the spec's printed precision. */
const GOLDEN: Record<string, [number, number?]> = {
  Res2Net50_26w_4s: [25_699_120],
  Res2Net50_vd_26w_4s: [25_718_352],
  Res2Net50_14w_8s: [25_059_816],
  Res2Net101_vd_26w_4s: [45_225_920],
  Res2Net200_vd_26w_4s: [76_215_536],
  ResNeSt50_fast_1s1x64d: [26_216_904, 4.329],
  ResNeSt50: [27_481_352, 5.371],
  resnest14d: [10_611_688, 2.749],
  resnest26d: [17_069_448, 3.623],
  resnest50d: [27_483_240, 5.371],
  resnest101e: [48_275_016, 13.321],
  resnest200e: [70_201_544, 35.52],
  resnest269e: [110_929_480, 77.349],
  resnest50d_1s4x24d: [25_677_000, 4.4],
  resnest50d_4s2x40d: [30_417_592, 4.369],
  RegNetX_4GF: [22_118_248, 3.964],
  EfficientNetB0: [5_288_548, 0.386],
  EfficientNetB1: [7_794_184, 0.687],
  EfficientNetB2: [9_109_994, 0.994],
  EfficientNetB3: [12_233_232, 1.827],
  EfficientNetB4: [19_341_616, 4.394],
  EfficientNetB5: [30_389_784, 10.266],
  EfficientNetB6: [43_040_704, 19.068],
  EfficientNetB7: [66_347_960, 37.746],
  EfficientNetB0_small: [4_652_008, 0.385],
};

describe('family counts (spec golden numbers)', () => {
  for (const [name, [params, gmacs]] of Object.entries(GOLDEN)) {
    it(`${name}: ${params} params${gmacs ? `, ${gmacs} GMACs` : ''}`, () => {
      const c = createModel(name).counts();
      assert.equal(c.params, params);
      if (gmacs) assert.ok(Math.abs(c.macs / 1e9 - gmacs) < 0.0015, `MACs ${c.macs}`);
    });
  }
});

describe('RegNetX design space', () => {
  it('derives RegNetX-4.0GF stages from w0/wa/wm/depth/group width', () => {
    assert.deepEqual(regnetStages(REGNETX['regnetx_040']!), [
      { width: 80, depth: 2, groupWidth: 40 },
      { width: 240, depth: 5, groupWidth: 40 },
      { width: 560, depth: 14, groupWidth: 40 },
      { width: 1360, depth: 2, groupWidth: 40 },
    ]);
  });
  it("reproduces timm's parameter counts for every size 002 … 320", () => {
    const timm: Record<string, number> = {
      regnetx_002: 2.68, regnetx_004: 5.16, regnetx_006: 6.2, regnetx_008: 7.26, regnetx_016: 9.19, regnetx_032: 15.3,
      regnetx_040: 22.12, regnetx_064: 26.21, regnetx_080: 39.57, regnetx_120: 46.11, regnetx_160: 54.28, regnetx_320: 107.81,
    };
    for (const [name, m] of Object.entries(timm)) assert.equal((createModel(name).counts().params / 1e6).toFixed(2), m.toFixed(2), name);
  });
  it('rounds half to even like Python', () => {
    assert.deepEqual([0.5, 1.5, 2.5, -0.5, 2.4, 2.6].map(roundHalfEven), [0, 2, 2, -0, 2, 3]);
  });
});

describe('EfficientNet', () => {
  it('pads TF SAME from the actual input size, extra pixel bottom/right', () => {
    assert.deepEqual(samePads(224, 224, 3, 2), [0, 0, 1, 1]);
    assert.deepEqual(samePads(224, 224, 5, 2), [1, 1, 2, 2]);
    assert.deepEqual(samePads(65, 65, 3, 2), [1, 1, 1, 1]);
    assert.deepEqual(samePads(17, 17, 5, 1), [2, 2, 2, 2]);
  });
  it('gives B2 at 260 the feature sizes 130, 65, 33, 17, 9 (odd sizes stay ceil(H/2))', () => {
    const g = createModel('tf_efficientnet_b2').graph;
    const sizes = new Set(g.nodes.filter((n) => n.op === 'Conv' && (n.attrs['strides'] as number[])[0] === 2).map((n) => g.shape(n.outputs[0]!)[2]));
    assert.deepEqual([...sizes], [130, 65, 33, 17, 9]);
  });
  it('SAME and symmetric padding differ (TF ports need SAME), sharing the weights', async () => {
    const tf = createModel('tf_efficientnet_b0', { inputSize: 64 }).initWeights(1);
    const own = createModel('efficientnet_b0', { inputSize: 64 });
    assert.deepEqual(own.parameters(), tf.parameters());
    own.weights = tf.weights;
    const x = { shape: [1, 3, 64, 64], data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.cos(i)) };
    const a = await runSession(await createSession(tf.toOnnx()), x);
    const b = await runSession(await createSession(own.toOnnx()), x);
    assert.ok(a['logits']!.data.some((v, i) => Math.abs(v - b['logits']!.data[i]!) > 1e-3));
  });
  it('EfficientNetB0_small has no SE and EfficientNetB0 the TF layout', () => {
    assert.ok(!createModel('EfficientNetB0_small').parameters().some((p) => p.name.includes('.se.')));
    assert.deepEqual(createModel('EfficientNetB0').parameters(), createModel('tf_efficientnet_b0').parameters());
    assert.equal(createModel('EfficientNetB5').cfg.cropPct, 456 / 488);
  });
});

describe('PaddleClas vs timm semantics', () => {
  const run = async (name: string, weightsFrom: string) => {
    const src = createModel(weightsFrom, { inputSize: 64 }).initWeights(5);
    const m = createModel(name, { inputSize: 64 });
    assert.deepEqual(m.parameters(), src.parameters(), 'same tensors');
    m.weights = src.weights;
    const x = { shape: [1, 3, 64, 64], data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37)) };
    return (await runSession(await createSession(m.toOnnx()), x))['features']!.data;
  };
  it('Res2Net: same tensors as timm, other outputs (first-block rule, exclusive pool)', async () => {
    const paddle = await run('Res2Net50_vd_26w_4s', 'res2net50d');
    const timm = await run('res2net50d', 'res2net50d');
    assert.ok(paddle.some((v, i) => Math.abs(v - timm[i]!) > 1e-4 * Math.max(1, Math.abs(timm[i]!))));
  });
  it('ResNeSt: PaddleClas fc1 has no bias (1,888 fewer params in ResNeSt50)', () => {
    assert.equal(createModel('resnest50d').counts().params - createModel('ResNeSt50').counts().params, 1888);
    assert.ok(!createModel('ResNeSt50').parameters().some((p) => p.name.endsWith('fc1.bias')));
  });
});

describe('feature extraction (features_only)', () => {
  const expect: Record<string, [number[], number[]]> = {
    resnet50: [[64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32]],
    resnest50d: [[64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32]],
    regnetx_040: [[32, 80, 240, 560, 1360], [2, 4, 8, 16, 32]],
    efficientnet_b0: [[16, 24, 40, 112, 320], [2, 4, 8, 16, 32]],
  };
  for (const [name, [channels, reductions]] of Object.entries(expect)) {
    it(`${name}: levels with timm's channels and reductions`, () => {
      const m = createModel(name);
      assert.deepEqual(m.featureInfo.map((f) => f.channels), channels);
      assert.deepEqual(m.featureInfo.map((f) => f.reduction), reductions);
    });
  }
  it('runs the chosen levels only, and the last level pooled is the pre-logits feature vector', async () => {
    const full = createModel('resnet18', { inputSize: 64 }).initWeights(6);
    const feats = createModel('resnet18', { inputSize: 64, featuresOnly: true, outIndices: [2, 4] });
    feats.weights = full.weights;
    assert.ok(!feats.graph.params.has('fc.weight'), 'the head is pruned');
    assert.ok(feats.counts().params < full.counts().params);
    const x = { shape: [1, 3, 64, 64], data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.cos(i * 0.05)) };
    const [f2, f4] = await feats.runFeatures(x);
    assert.deepEqual(f2!.shape, [1, 128, 8, 8]);
    assert.deepEqual(f4!.shape, [1, 512, 2, 2]);
    const pooled = Array.from({ length: 512 }, (_, c) => (f4!.data[c * 4]! + f4!.data[c * 4 + 1]! + f4!.data[c * 4 + 2]! + f4!.data[c * 4 + 3]!) / 4);
    const { features } = await full.run(x);
    assert.ok(pooled.every((v, c) => Math.abs(v - features.data[c]!) < 1e-4 * Math.max(1, Math.abs(v))));
  });
});

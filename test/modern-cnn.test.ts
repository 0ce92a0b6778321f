/**
 * MobileNetV3 and EfficientNetV2: parameter counts of every name against timm 0.9.16, pretrained configs, other
 * sizes/batches/class counts, the gradient fixtures of ../shared/grad-fixtures-modern through `tsimm grad`, and
 * the training-only stochastic depth / dropout ops (identity in export, seeded masks in training graphs).
 * Forward parity of the four fixtures runs in parity.test.ts (it enumerates every registered fixture).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createModel, type Model } from '../src/model.js';
import { listModels } from '../src/models/index.js';
import { lowerGraph } from '../src/onnx/export.js';
import { fit, type BatchSource } from '../src/train/fit.js';
import { dropMasks } from '../src/train/engine.js';
import { timmInit } from '../src/train/init.js';
import { Rng } from '../src/util/rng.js';
import { uniformInput } from '../src/math.js';
import { GRAD_FIXTURES_MODERN, gradCases, loadGradCase, NO_GRAD_FIXTURES_MODERN, runGradCase, runningStatErrors } from './helpers/grad-fixtures.js';
import { memoryBatches } from './helpers/batches.js';
import { describeOrSkip } from './helpers/skip.js';

/** sum(p.numel() for p in timm.create_model(name).parameters()), timm 0.9.16 on PyTorch 1.13. */
const TIMM_PARAMS: Record<string, number> = {
  mobilenetv3_large_075: 3993528,
  mobilenetv3_large_100: 5483032,
  mobilenetv3_small_050: 1593224,
  mobilenetv3_small_075: 2041872,
  mobilenetv3_small_100: 2542856,
  tf_mobilenetv3_large_075: 3993528,
  tf_mobilenetv3_large_100: 5483032,
  tf_mobilenetv3_large_minimal_100: 3924288,
  tf_mobilenetv3_small_075: 2041872,
  tf_mobilenetv3_small_100: 2542856,
  tf_mobilenetv3_small_minimal_100: 2044736,
  efficientnetv2_rw_t: 13649388,
  efficientnetv2_rw_s: 23941296,
  efficientnetv2_rw_m: 53236442,
  tf_efficientnetv2_b0: 7139704,
  tf_efficientnetv2_b1: 8141052,
  tf_efficientnetv2_b2: 10096086,
  tf_efficientnetv2_b3: 14358406,
  tf_efficientnetv2_s: 21458488,
  tf_efficientnetv2_m: 54139356,
  tf_efficientnetv2_l: 118515272,
};

const tmp = mkdtempSync(join(tmpdir(), 'tsimm-modern-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The ONNX nodes an export writes (the lowered graph), as op types. */
const exportedOps = (m: Model): string[] => lowerGraph(m.graph, m.weights!, true).nodes.map((n) => n.op);

describe('MobileNetV3 and EfficientNetV2 names', () => {
  it('every name is registered with its parameter count equal to timm 0.9.16', () => {
    const names = [...listModels('*', { family: 'mobilenetv3', source: 'timm' }), ...listModels('*', { family: 'efficientnetv2' })].sort();
    assert.deepEqual(names, Object.keys(TIMM_PARAMS).sort());
    for (const [name, params] of Object.entries(TIMM_PARAMS)) assert.equal(createModel(name).counts().params, params, name);
  });

  it("pretrained configs as timm registers them (default tag, size, test size, crop, interpolation, mean/std)", () => {
    const cfg = (n: string) => createModel(n).cfg;
    const a = cfg('mobilenetv3_large_100');
    assert.deepEqual([a.tag, a.interpolation, a.cropPct, a.mean], ['ra_in1k', 'bicubic', 0.875, [0.485, 0.456, 0.406]]);
    assert.equal(a.weights?.hfHubId, 'timm/mobilenetv3_large_100.ra_in1k');
    const b = cfg('tf_mobilenetv3_small_minimal_100');
    assert.deepEqual([b.tag, b.interpolation, b.mean], ['in1k', 'bilinear', [0.5, 0.5, 0.5]]);
    assert.equal(cfg('mobilenetv3_large_075').weights, undefined, 'timm has no weights for mobilenetv3_large_075');
    const c = cfg('tf_efficientnetv2_b0');
    assert.deepEqual([c.inputSize, c.testInputSize, c.cropPct, c.interpolation], [[3, 192, 192], [3, 224, 224], 0.875, 'bicubic']);
    const d = cfg('tf_efficientnetv2_m');
    assert.deepEqual([d.tag, d.inputSize, d.testInputSize, d.cropPct, d.cropMode, d.mean], ['in21k_ft_in1k', [3, 384, 384], [3, 480, 480], 1.0, 'squash', [0.5, 0.5, 0.5]]);
    const e = cfg('efficientnetv2_rw_t');
    assert.deepEqual([e.tag, e.inputSize, e.testInputSize, e.cropPct], ['ra2_in1k', [3, 224, 224], [3, 288, 288], 1.0]);
  });

  it('builds and runs at other sizes, batches and class counts; HardSwish/HardSigmoid are ONNX ops', async () => {
    const m = createModel('mobilenetv3_small_100', { inputSize: [160, 128], numClasses: 10 }).initWeights(1);
    const out = await m.run(uniformInput([3, 3, 160, 128]));
    assert.deepEqual([out.logits.shape, out.features.shape], [[3, 10], [3, 1024]]);
    assert.ok(out.logits.data.every(Number.isFinite));
    const ops = new Set(exportedOps(m));
    assert.ok(ops.has('HardSwish') && ops.has('HardSigmoid'), `ops: ${[...ops].join(', ')}`);
    // An odd size exercises TF SAME padding's uneven split.
    const e = createModel('tf_efficientnetv2_b0', { inputSize: 225, numClasses: 7 }).initWeights(2);
    const r = await e.run(uniformInput([1, 3, 225, 225]));
    assert.deepEqual(r.logits.shape, [1, 7]);
    assert.ok(r.logits.data.every(Number.isFinite));
    assert.equal(e.counts().params, TIMM_PARAMS['tf_efficientnetv2_b0']! - 1000 * 1281 + 7 * 1281);
  });
});

describeOrSkip('grad fixtures of the newer CNNs (tsimm grad vs timm on PyTorch)', NO_GRAD_FIXTURES_MODERN, () => {
  const mine = new Set([...listModels('*', { family: 'mobilenetv3' }), ...listModels('*', { family: 'efficientnetv2' })]);
  const cases = NO_GRAD_FIXTURES_MODERN ? [] : gradCases(GRAD_FIXTURES_MODERN).filter((n) => mine.has(loadGradCase(n, GRAD_FIXTURES_MODERN).meta.model));
  it('has the MobileNetV3 and EfficientNetV2 cases', () => assert.deepEqual(cases, ['mobilenetv3_large_100_64x4', 'tf_efficientnetv2_b0_64x2']));
  for (const name of cases) {
    for (const mode of ['eval', 'train'] as const) {
      it(`${name} ${mode} mode: loss, logits, every gradient, running statistics, one SGD step`, (t) => {
        const run = runGradCase(tmp, name, mode, GRAD_FIXTURES_MODERN);
        const { checks, result } = run;
        const rec = run.c.meta[mode];
        const step = rec.loss_after_sgd_step_fp64 - rec.loss_fp64;
        if (rec.loss_after_sgd_step_fp64 > 10 * rec.loss_fp64) {
          // The fixture's SGD step diverged (tf_efficientnetv2_b0 eval: loss 11.1 → 1182.9) and its outcome is
          // ill-conditioned: timm 0.9.16's own float32 gradients (rel. error ~1.2e-5) move it by 4.2 in float64,
          // 8× the step tolerance (4 × one float32 run's 0.125), and each conv's ~1.3e-5 gradient error moves it
          // by up to 1.3. A diverged step is checked to 5 % of its size; gradients keep their strict check.
          const i = checks.findIndex((k) => k.what === 'sgd step');
          const err = Math.abs(result.loss_after_sgd_step - result.loss - step) / (0.05 * Math.abs(step));
          t.diagnostic(`${name} ${mode}: diverged SGD step ${step.toFixed(1)}; ours ${(result.loss_after_sgd_step - result.loss).toFixed(1)} (${(err * 5).toFixed(2)} % off)`);
          checks[i] = { what: 'sgd step (diverged, 5 %)', strict: err, allowed: err };
        }
        const worst = checks.reduce((a, b) => (b.strict > a.strict ? b : a));
        const worstGrad = checks.filter((k) => k.what.startsWith('grad ')).reduce((a, b) => (b.strict > a.strict ? b : a));
        t.diagnostic(`${name} ${mode}: worst gradient ${worstGrad.what} at ${worstGrad.strict.toFixed(3)} of its strict tolerance`);
        t.diagnostic(`${name} ${mode}: ${checks.length} checks; worst ${worst.what} at ${worst.strict.toFixed(3)} of the README's strict tolerance (${worst.allowed.toFixed(3)} of the float32 allowance)`);
        for (const k of checks) assert.ok(k.allowed <= 1, `${name} ${mode}: ${k.what} is ${k.allowed.toFixed(2)}× its tolerance (strict ${k.strict.toFixed(2)}×)`);
        if (mode === 'train') for (const e of runningStatErrors(run)) assert.ok(e.diff <= 1e-3 * Math.max(1, e.scale), `${name}: running statistic ${e.key} is ${e.diff} away`);
      });
    }
  }
});

// ------------------------------------------------------------------------------------------ drop path, dropout

const S = 32;
const C = 4;

/** A learnable task: class k brightens quadrant k; the order depends only on the epoch. */
function source(count: number, batch: number, seed: number): BatchSource {
  const rng = new Rng(seed);
  const images = Array.from({ length: count }, (_, i) => {
    const x = new Float32Array(3 * S * S);
    for (let j = 0; j < x.length; j++) x[j] = 0.3 * rng.normal() + (Math.floor((j % (S * S)) / S) < S / 2 === (i % C < 2) ? 1 : 0);
    return { x, t: i % C };
  });
  return memoryBatches(images, batch, seed, [3, S, S]);
}

const reg = { dropPathRate: 0.3, dropRate: 0.25 };
function fresh(name: string, o: { dropPathRate?: number; dropRate?: number } = {}) {
  const m = createModel(name, { inputSize: S, numClasses: C, ...o });
  m.weights = timmInit(m.fullGraph, name.includes('net') && !name.startsWith('resnet') ? 'efficientnet' : 'resnet', 0);
  return m;
}

describe('stochastic depth and dropout (training graphs only)', () => {
  it("timm's schedules: one DropPath per residual block after the first, one Dropout before the classifier", () => {
    const count = (n: string, op: string, o: { dropPathRate?: number; dropRate?: number } = reg) => createModel(n, o).graph.nodes.filter((x) => x.op === op).length;
    assert.equal(count('resnet18', 'DropPath'), 7, 'ResNet: rate · i / (blocks − 1), block 0 at rate 0');
    assert.equal(count('resnet18', 'Dropout'), 1);
    assert.equal(count('resnet18', 'DropPath', {}), 0, 'rate 0 adds no node');
    const rates = createModel('resnet18', reg).graph.nodes.filter((x) => x.op === 'DropPath').map((x) => x.attrs['rate'] as number);
    assert.ok(Math.abs(rates[6]! - 0.3) < 1e-12 && Math.abs(rates[0]! - 0.3 / 7) < 1e-12, rates.join());
    // MobileNetV3-Large: 16 blocks, residual ones get rate · index / 16 (EfficientNet's rule).
    const mnv3 = createModel('mobilenetv3_large_100', reg).graph.nodes.filter((x) => x.op === 'DropPath');
    assert.deepEqual(mnv3.map((x) => x.name), ['blocks.0.0.drop_path', 'blocks.1.1.drop_path', 'blocks.2.1.drop_path', 'blocks.2.2.drop_path', 'blocks.3.1.drop_path', 'blocks.3.2.drop_path', 'blocks.3.3.drop_path', 'blocks.4.1.drop_path', 'blocks.5.1.drop_path', 'blocks.5.2.drop_path'].slice(1));
    assert.ok(Math.abs((mnv3.at(-1)!.attrs['rate'] as number) - (0.3 * 14) / 16) < 1e-12);
    assert.ok(count('efficientnet_b0', 'DropPath') > 0 && count('tf_efficientnetv2_b0', 'DropPath') > 0 && count('regnetx_002', 'DropPath') > 0);
  });

  it('they are the identity in inference and export: the same ONNX nodes and outputs as without them', async () => {
    for (const name of ['resnet18', 'mobilenetv3_small_100', 'tf_efficientnetv2_b0']) {
      const a = fresh(name);
      const b = fresh(name, reg);
      b.weights = a.weights;
      assert.deepEqual(exportedOps(b), exportedOps(a), name);
      const x = uniformInput([2, 3, S, S]);
      assert.deepEqual((await b.run(x)).logits.data, (await a.run(x)).logits.data, name);
    }
  });

  it('rate 0 trains exactly as before; with a rate the masks follow the step keys alone', async () => {
    const batch = { shape: [4, 3, S, S], data: uniformInput([4, 3, S, S]).data };
    const targets = [0, 1, 2, 3];
    const plain = fresh('mobilenetv3_small_100');
    const zero = fresh('mobilenetv3_small_100', { dropPathRate: 0, dropRate: 0 });
    zero.weights = plain.weights;
    const tp = plain.trainer();
    const tz = zero.trainer();
    assert.deepEqual(tz.graph.bytes, tp.graph.bytes, 'rate 0: the same training graph');
    assert.equal(tp.graph.masks, undefined);
    const p0 = await tp.forwardBackward(batch, targets);
    const z0 = await tz.forwardBackward(batch, targets, { maskKeys: [9, 9, 9] });
    assert.equal(z0.loss, p0.loss);
    const m = fresh('mobilenetv3_small_100', reg);
    m.weights = plain.weights;
    const tm = m.trainer();
    assert.equal(tm.graph.masks!.length, 6 + 1, 'one mask input per DropPath (6 residual blocks after the first) and Dropout node');
    const a = await tm.forwardBackward(batch, targets, { maskKeys: [1, 0, 5] });
    const b = await tm.forwardBackward(batch, targets, { maskKeys: [1, 0, 5] });
    const c = await tm.forwardBackward(batch, targets, { maskKeys: [1, 0, 6] });
    assert.equal(a.loss, b.loss);
    assert.deepEqual(a.grads.get('conv_stem.weight'), b.grads.get('conv_stem.weight'));
    assert.notEqual(a.loss, c.loss, 'other keys draw other masks');
    assert.notEqual(a.loss, p0.loss);
    for (const x of [tp, tz, tm]) await x.release();
    // Masks: 0 or 1 / keep, kept at about the keep rate.
    const masks = dropMasks([{ input: 'm', kind: 'drop', rate: 0.25, dims: [1000] }], 8, [3]);
    const d = masks['m']!.data;
    assert.ok(d.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
    const kept = d.filter((v) => v > 0).length / d.length;
    assert.ok(Math.abs(kept - 0.75) < 0.02, `kept ${kept}`);
  });

  it('an interrupted run with stochastic depth and dropout, resumed, equals an uninterrupted one', async () => {
    const recipe = { optimizer: 'sgd' as const, lr: 0.05, momentum: 0.9, weightDecay: 1e-4 };
    const full = fresh('resnet18', reg);
    const a = await fit({ model: full, train: source(32, 8, 3), epochs: 2, trainer: recipe, output: join(tmp, 'dp-a') });
    const part = fresh('resnet18', reg);
    const ctl = new AbortController();
    const first = await fit({
      model: part, train: source(32, 8, 3), epochs: 2, trainer: recipe, output: join(tmp, 'dp-b'), signal: ctl.signal,
      onStep: (s) => { if (s.epoch === 1 && s.batch === 2) ctl.abort(); },
    });
    assert.equal(first.interrupted, true);
    const resumed = fresh('resnet18', reg);
    const b = await fit({ model: resumed, train: source(32, 8, 3), epochs: 2, trainer: recipe, output: join(tmp, 'dp-b'), resume: true });
    b.epochs.forEach((e, i) => assert.equal(e.train_loss, a.epochs[i]!.train_loss, `epoch ${i}`));
    for (const k of ['conv1.weight', 'layer4.1.bn2.running_var', 'fc.weight']) assert.deepEqual(resumed.weights!.get(k), full.weights!.get(k), k);
    // The same run without the regularizers is a different run (the masks were active).
    const none = fresh('resnet18');
    const c = await fit({ model: none, train: source(32, 8, 3), epochs: 1, trainer: recipe });
    assert.notEqual(c.epochs[0]!.train_loss, a.epochs[0]!.train_loss);
  });
});

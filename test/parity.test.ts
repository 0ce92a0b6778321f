/**
 * Golden parity with the reference (timm 0.9.16 on PyTorch) under "fixture weights v1": every fixture of a
 * registered model must match logits and pooled features within its tolerance_rel, with parameter names,
 * shapes and order exactly those of timm's state_dict.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createModel } from '../src/model.js';
import { listModels, resolveModel } from '../src/models/index.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { fixtureNames, loadFixture, NO_SHARED, relError } from './helpers/fixtures.js';
import { describeOrSkip } from './helpers/skip.js';

const registered = new Set(listModels('*'));
const fixtures = NO_SHARED ? [] : fixtureNames().filter((n) => registered.has(n));

describeOrSkip('fixture weights v1 helper', NO_SHARED, () => {
  it('reproduces the README check values and the shared input', async () => {
    const { uniform, fixtureInput } = await import('./helpers/fixtures.js');
    const u = uniform('conv1.weight', 2, 0);
    assert.equal(u[0], 0.2464715822134167);
    assert.equal(u[1], 0.4017355826217681);
    const { readNpy } = await import('../src/node/npy.js');
    const { join } = await import('node:path');
    const { FIXTURES } = await import('./helpers/fixtures.js');
    const ref = readNpy(join(FIXTURES, 'resnet18', 'input.npy'));
    assert.deepEqual(fixtureInput(ref.shape, 1).data, ref.data);
  });
});

describeOrSkip('parity with timm fixtures', NO_SHARED, () => {
  for (const name of fixtures) {
    it(name, async (t) => {
      const f = loadFixture(name);
      const [, , h, w] = f.meta.input_shape;
      const model = createModel(f.meta.model, { inputSize: [h, w] });
      const ours = model.parameters().map((p) => `${p.name} [${p.shape.join(', ')}]`);
      const theirs = Object.entries(f.meta.tensors).map(([k, s]) => `${k} [${s.join(', ')}]`);
      assert.deepEqual(ours, theirs, 'parameter names, shapes and order equal timm state_dict');
      assert.equal(model.counts().params, f.meta.params);
      // The registry's pretrained config; model.cfg.inputSize is the model's own input ([3, h, w]).
      const cfg = resolveModel(f.meta.model).cfg;
      assert.deepEqual([...cfg.inputSize], f.meta.pretrained_cfg.input_size, 'default pretrained input size');
      assert.deepEqual([...model.cfg.inputSize], [3, h, w], "the model's cfg reports its real input size");
      assert.equal(model.cfg.interpolation, f.meta.pretrained_cfg.interpolation);
      assert.equal(model.cfg.cropPct, f.meta.pretrained_cfg.crop_pct);
      model.setWeights(f.weights, `${name} fixture`);
      const out = await model.run(f.input);
      const tol = f.meta.tolerance_rel;
      const el = relError(out.logits.data, f.logits.data);
      const ef = relError(out.features.data, f.features.data);
      t.diagnostic(`parity ${name}: logits ${el.toExponential(2)} features ${ef.toExponential(2)} (tolerance ${tol})`);
      assert.ok(el <= tol, `logits rel error ${el} > ${tol}`);
      assert.ok(ef <= tol, `features rel error ${ef} > ${tol}`);
      assert.deepEqual(Array.from({ length: out.logits.shape[0]! }, (_, i) => argmax(out.logits.data.subarray(i * 1000, (i + 1) * 1000))), f.meta.top1);
    });
  }

  it('resnet18 matches unfolded (BatchNormalization kept) and at batch 1', { skip: !registered.has('resnet18') }, async () => {
    const f = loadFixture('resnet18');
    const model = createModel('resnet18').setWeights(f.weights);
    const session = await createSession(model.toOnnx({ foldBatchNorm: false }), { optimization: 'disabled' });
    const per = 3 * 224 * 224;
    const one = await runSession(session, { shape: [1, 3, 224, 224], data: f.input.data.slice(per, 2 * per) });
    assert.ok(relError(one['logits']!.data, f.logits.data.slice(1000, 2000)) <= f.meta.tolerance_rel);
    await session.release();
  });
});

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/**
 * Training convs on ONNX Runtime's blocked (NCHWc) kernels (src/train/nchwc.ts): the probe, and the same loss,
 * logits and gradients as the standard-ops graph for each blocked form (RGB stem, full, depthwise, dX convs),
 * so the speed-up changes nothing the optimizer sees. Skips where this CPU build of ORT has no blocked ops.
 */
import assert from 'node:assert/strict';
import { before, it } from 'node:test';
import { createModel } from '../src/model.js';
import { nchwcForm } from '../src/train/nchwc.js';
import { nchwcBlock, Trainer } from '../src/train/trainer.js';
import { describeOrSkip } from './helpers/skip.js';

const block = await nchwcBlock();

it('nchwcForm follows ORT rules: blocks of output channels; full, RGB stem, depthwise; else none', () => {
  assert.equal(nchwcForm({ inCh: 64, outCh: 128, group: 1 }, 16), 'full');
  assert.equal(nchwcForm({ inCh: 3, outCh: 32, group: 1 }, 16), 'nchw');
  assert.equal(nchwcForm({ inCh: 96, outCh: 96, group: 96 }, 16), 'depthwise');
  assert.equal(nchwcForm({ inCh: 24, outCh: 32, group: 1 }, 16), undefined);
  assert.equal(nchwcForm({ inCh: 64, outCh: 40, group: 1 }, 16), undefined);
  assert.equal(nchwcForm({ inCh: 64, outCh: 64, group: 2 }, 16), undefined);
  assert.equal(nchwcForm({ inCh: 64, outCh: 64, group: 1 }, 0), undefined);
});

it('the probe gives 0 or a block of 8 or 16 channels', () => {
  assert.ok([0, 8, 16].includes(block), `block ${block}`);
});

function relL2(a: Float32Array, b: Float32Array, scale: number): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(d) / scale;
}

describeOrSkip('blocked training convs agree with standard ones', block ? false : 'this ONNX Runtime build has no NCHWc ops', () => {
  // 64 px: at 32 px the last stages are 1×1, and train-mode BatchNorm over 2–3 values turns float rounding
  // (summation order) into visible differences, on either side.
  for (const [name, size, batch] of [['resnet18', 64, 3], ['efficientnet_b0', 64, 2]] as const) {
    let plain: Trainer;
    let blocked: Trainer;
    before(() => {
      const model = createModel(name, { inputSize: size, numClasses: 10 }).initWeights(1);
      plain = model.trainer({ batchNorm: 'train', nchwc: false, threads: 1 });
      blocked = model.trainer({ batchNorm: 'train', nchwc: true, threads: 1 });
    });
    it(`${name}: same loss, logits and every gradient (within float rounding)`, async () => {
      const data = Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37));
      const x = { shape: [batch, 3, size, size], data };
      const t = Array.from({ length: batch }, (_, i) => (i * 3) % 10);
      const a = await plain.forwardBackward(x, t);
      const b = await blocked.forwardBackward(x, t);
      assert.equal(blocked.nchwc, block);
      assert.equal(plain.nchwc, 0);
      // The blocked graph really has blocked convs, forward and dX.
      const text = new TextDecoder('latin1').decode(blocked.graph.bytes);
      assert.ok(text.includes('com.microsoft.nchwc') && text.includes(':dX:ReorderInput'), 'blocked ops in the graph');
      assert.ok(Math.abs(a.loss - b.loss) < 1e-4 * Math.abs(a.loss), `loss ${a.loss} vs ${b.loss}`);
      assert.ok(relL2(a.logits, b.logits, Math.sqrt(a.logits.reduce((s, v) => s + v * v, 0))) < 1e-4);
      let worst = 0;
      const norm = (g: Float32Array) => Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      // A BatchNorm bias followed by a train-mode BatchNorm has an exact gradient of 0 (its sum is all rounding), so
      // each tensor's difference is relative to its own norm with a floor of 1e-3 of the whole gradient's.
      const floor = 1e-3 * Math.sqrt([...a.grads.values()].reduce((s, g) => s + norm(g) ** 2, 0));
      for (const [p, g] of a.grads) worst = Math.max(worst, relL2(g, b.grads.get(p)!, Math.max(norm(g), floor)));
      assert.ok(worst < 2e-3, `worst relative gradient difference ${worst}`);
      for (const [k, s] of a.batchStats) assert.ok(relL2(s.var, b.batchStats.get(k)!.var, 1 + Math.sqrt(s.var.reduce((q, v) => q + v * v, 0))) < 1e-4, k);
    });
  }
});

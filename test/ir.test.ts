import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countGraph } from '../src/ir/count.js';
import { Graph, ShapeError, windowOutput } from '../src/ir/graph.js';
import { createModel } from '../src/model.js';
import { InputError } from '../src/weights/tensor.js';

describe('graph IR shape inference', () => {
  it('computes conv and pool output sizes like PyTorch', () => {
    assert.equal(windowOutput(224, 7, 2, 3, 3), 112);
    assert.equal(windowOutput(112, 3, 2, 1, 1), 56);
    // Cadene's legacy max-pool: 3x3/s2, no padding, ceil mode.
    assert.equal(windowOutput(112, 3, 2, 0, 0, 1, true), 56);
    assert.equal(windowOutput(112, 3, 2, 0, 0, 1, false), 55);
    // avg-down on an odd map: ceil keeps the last half window.
    assert.equal(windowOutput(15, 2, 2, 0, 0, 1, true), 8);
  });

  it('tracks shapes through conv, groups, pools and the head', () => {
    const g = new Graph();
    let x = g.input('input', ['N', 3, 32, 32]);
    x = g.conv(x, 'a', { out: 8, kernel: 3, stride: 2 });
    assert.deepEqual(g.shape(x), ['N', 8, 16, 16]);
    x = g.conv(x, 'b', { out: 16, kernel: 3, groups: 4 });
    assert.deepEqual(g.params.get('b.weight')!.shape, [16, 2, 3, 3]);
    x = g.avgPool(x, 'p', { kernel: 2, stride: 2, ceil: true, countIncludePad: false });
    assert.deepEqual(g.shape(x), ['N', 16, 8, 8]);
    const [s1, s2] = g.split(x, [4, 12], 1);
    assert.deepEqual(g.shape(s2!), ['N', 12, 8, 8]);
    assert.deepEqual(g.shape(g.concat([s2!, s1!], 1)), ['N', 16, 8, 8]);
    const f = g.flatten(g.globalAvgPool(x));
    assert.deepEqual(g.shape(g.linear(f, 'fc', 10)), ['N', 10]);
  });

  it('names the layer when channels do not divide into groups', () => {
    const g = new Graph();
    const x = g.input('input', ['N', 6, 8, 8]);
    assert.throws(() => g.conv(x, 'layer2.0.conv2', { out: 8, kernel: 3, groups: 4 }), (e: unknown) => e instanceof ShapeError && e.layer === 'layer2.0.conv2');
  });

  it('rejects an input too small for the model, naming the layer and the smallest size that works', () => {
    // Cadene's unpadded stem pool needs at least a 3x3 map, i.e. a 5x5 input.
    assert.throws(
      () => createModel('legacy_senet154', { inputSize: 4 }),
      (e: unknown) => e instanceof InputError && /layer0\.pool/.test(e.message) && /smallest size that works is 5x5/.test(e.message),
    );
    assert.equal(createModel('legacy_senet154', { inputSize: 5 }).graph.shape('logits')[1], 1000);
  });

  it('counts params and MACs of a conv by hand', () => {
    const g = new Graph();
    const x = g.input('input', ['N', 4, 10, 10]);
    const y = g.batchNorm(g.conv(x, 'c', { out: 6, kernel: 3, groups: 2 }), 'bn');
    g.output(g.linear(g.flatten(g.globalAvgPool(y)), 'fc', 3), 'logits');
    const c = countGraph(g);
    assert.equal(c.params, 6 * 2 * 9 + 2 * 6 + (6 * 3 + 3));
    assert.equal(c.bufferParams, 12);
    assert.equal(c.macs, 10 * 10 * 6 * 2 * 9 + 18);
    assert.equal(c.flops, 2 * c.macs);
  });
});

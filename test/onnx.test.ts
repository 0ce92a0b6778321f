import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Graph } from '../src/ir/graph.js';
import { buildOnnx, concatChunks } from '../src/onnx/export.js';
import { writeOnnx } from '../src/node/files.js';
import { Message } from '../src/onnx/proto.js';
import { createModel } from '../src/model.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { initWeights } from '../src/weights/init.js';
import { uniformInput } from '../src/math.js';


/** BatchNorm statistics that are not the identity, so folding has something to get wrong. */
function perturbBatchNorm(g: Graph, weights: Map<string, Float32Array>): void {
  for (const p of g.params.values()) {
    const w = weights.get(p.name)!;
    for (let i = 0; i < w.length; i++) {
      const u = ((i * 2654435761) % 1000) / 1000;
      if (p.role === 'bn_var') w[i] = 0.5 + u;
      if (p.role === 'bn_mean' || p.role === 'bn_bias') w[i] = (u - 0.5) * 0.2;
      if (p.role === 'bn_weight') w[i] = 0.5 + u;
    }
  }
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe('protobuf encoder', () => {
  it('encodes varints, strings and nested messages', () => {
    const inner = new Message().int(1, 300);
    const m = new Message().string(2, 'ab').message(3, inner).int(4, -1);
    const bytes = Array.from(m.toBytes());
    assert.deepEqual(bytes.slice(0, 4), [0x12, 2, 0x61, 0x62]);
    assert.deepEqual(bytes.slice(4, 8), [0x1a, 3, 0x08, 0xac]);
    assert.equal(bytes[8], 0x02);
    // -1 as int64: ten bytes, the last 0x01.
    assert.deepEqual(bytes.slice(9), [0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  });
});

describe('ONNX export', () => {
  const model = createModel('resnet18', { inputSize: 64 });
  const weights = initWeights(model.graph, 3);
  perturbBatchNorm(model.graph, weights);
  model.weights = weights;
  const x = uniformInput([2, 3, 64, 64], 1);

  it('folds BatchNorm into convs without changing the outputs', async () => {
    const folded = await createSession(model.toOnnx());
    const plain = await createSession(model.toOnnx({ foldBatchNorm: false }));
    const a = await runSession(folded, x);
    const b = await runSession(plain, x);
    const scale = Math.max(1, ...Array.from(b['logits']!.data, Math.abs));
    assert.ok(maxAbsDiff(a['logits']!.data, b['logits']!.data) / scale < 1e-5);
    assert.deepEqual(a['logits']!.shape, [2, 1000]);
    assert.deepEqual(a['features']!.shape, [2, 512]);
    await folded.release();
    await plain.release();
  });

  it('has a symbolic batch: batch 1 gives the same row as batch 2', async () => {
    const s = await createSession(model.toOnnx({ outputs: ['logits'] }));
    const both = await runSession(s, x);
    const one = await runSession(s, { shape: [1, 3, 64, 64], data: x.data.slice(0, 3 * 64 * 64) });
    assert.ok(maxAbsDiff(one['logits']!.data, both['logits']!.data.slice(0, 1000)) < 1e-5);
    assert.deepEqual(s.outputNames, ['logits']);
    await s.release();
  });

  it('writes external data that ONNX Runtime loads by path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsimm-onnx-'));
    try {
      const path = join(dir, 'm.onnx');
      writeOnnx(path, model.graph, weights, { external: true });
      assert.ok(existsSync(`${path}.data`));
      assert.ok(statSync(path).size < 200_000, 'the .onnx holds the graph only');
      const s = await createSession(path);
      const inline = await createSession(model.toOnnx());
      const a = await runSession(s, x);
      const b = await runSession(inline, x);
      assert.equal(maxAbsDiff(a['logits']!.data, b['logits']!.data), 0);
      await s.release();
      await inline.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exports float16 weights at half the size, close to fp32', async () => {
    const fp32 = model.toOnnx();
    const fp16 = model.toOnnx({ float16: true });
    assert.ok(fp16.byteLength < fp32.byteLength * 0.52);
    const a = await runSession(await createSession(fp32), x);
    const b = await runSession(await createSession(fp16), x);
    const scale = Math.max(1, ...Array.from(a['logits']!.data, Math.abs));
    assert.ok(maxAbsDiff(a['logits']!.data, b['logits']!.data) / scale < 1e-2);
  });

  it('stores the model name and pretrained config as metadata', () => {
    const bytes = Buffer.from(model.toOnnx());
    assert.ok(bytes.includes(Buffer.from('tsimm.pretrained_cfg')));
    assert.ok(bytes.includes(Buffer.from('"interpolation":"bicubic"')));
  });

  it('leaves nothing behind when writing fails', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsimm-onnx-'));
    try {
      const path = join(dir, 'missing-dir', 'm.onnx');
      assert.throws(() => writeOnnx(path, model.graph, weights));
      assert.ok(!existsSync(path));
      const m = buildOnnx(model.graph, weights);
      assert.equal(concatChunks(m.chunks, m.byteLength).byteLength, m.byteLength);
      void readFileSync;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

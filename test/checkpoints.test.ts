/**
 * Checkpoint formats, read without Python: files written by real PyTorch (Debian python3-torch), pickled
 * numpy (.pdparams with PaddleClas key names), and hostile or broken files.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createModel, type Model } from '../src/model.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { readCheckpoint } from '../src/node/checkpoint.js';
import { loadSafetensors, saveSafetensors } from '../src/node/safetensors.js';
import { InputError } from '../src/weights/tensor.js';
import { makeCheckpoints, NO_TORCH } from './helpers/python.js';
import { describeOrSkip } from './helpers/skip.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-ckpt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tensorsOf = (m: Model) => m.stateDict();

function assertSameWeights(a: Model, b: Model): void {
  for (const p of a.parameters()) assert.deepEqual(b.weights!.get(p.name), a.weights!.get(p.name), p.name);
}

describeOrSkip('PyTorch checkpoints written by torch.save', NO_TORCH, () => {
  before(() => makeCheckpoints('formats', dir));

  for (const file of ['zip.pth', 'legacy.pth', 'nested.pth']) {
    it(`${file}: strided, offset, shared, fp16, bf16, f64 and 0-d tensors read exactly`, async () => {
      const expected = loadSafetensors(join(dir, 'expected.safetensors'));
      const { format, tensors } = await readCheckpoint(join(dir, file));
      assert.equal(format, 'pth');
      assert.deepEqual([...tensors.keys()].sort(), [...expected.keys()].sort(), 'integer tensors skipped, module. prefix stripped');
      for (const [k, v] of expected) assert.deepEqual(tensors.get(k), v, k);
    });
  }

  it('a model from .pth (zip, legacy, fp16) gives the same logits as from safetensors', async () => {
    const ref = createModel('resnet18', { inputSize: 64 }).initWeights(11);
    saveSafetensors(join(dir, 'r18.safetensors'), tensorsOf(ref));
    makeCheckpoints('model', join(dir, 'r18.safetensors'), dir);
    const x = { shape: [2, 3, 64, 64], data: Float32Array.from({ length: 2 * 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.01)) };
    const logits = async (m: Model) => (await runSession(await createSession(m.toOnnx()), x))['logits']!.data;
    const want = await logits(ref);
    for (const file of ['model.pth', 'model_legacy.pth']) {
      const m = await createModel('resnet18', { inputSize: 64 }).loadCheckpoint(join(dir, file));
      assertSameWeights(ref, m);
      assert.deepEqual(await logits(m), want, file);
    }
    const half = await createModel('resnet18', { inputSize: 64 }).loadCheckpoint(join(dir, 'model_fp16.pth'));
    const got = await logits(half);
    const scale = Math.max(...Array.from(want, Math.abs));
    assert.ok(got.every((v, i) => Math.abs(v - want[i]!) < 2e-2 * scale), 'fp16 weights within fp16 precision');
  });
});

describeOrSkip('PaddleClas .pdparams (pickled numpy, Paddle key names)', NO_TORCH, () => {
  const cases: [string, string, (m: Model) => object][] = [
    ['ResNet18_vd', 'legendary', () => ({ layers: [2, 2, 2, 2] })],
    ['ResNet50_vd', 'legendary', () => ({ layers: [3, 4, 6, 3] })],
    ['EfficientNetB0', 'efficientnet', () => ({ repeats: [1, 2, 2, 3, 3, 4, 1] })],
    ['RegNetX_4GF', 'regnet', () => ({})],
    ['MobileNetV3_large_x1_0', 'mobilenetv3', () => ({ stages: [1, 2, 3, 4, 2, 3] })],
    ['MobileNetV3_small_x0_5', 'mobilenetv3', () => ({ stages: [1, 2, 3, 2, 3] })],
  ];
  for (const [name, scheme, info] of cases) {
    for (const protocol of [2, 4]) {
      it(`${name} (${scheme} keys, pickle protocol ${protocol}) loads with every tensor in place`, async () => {
        const ref = createModel(name, { inputSize: 32 }).initWeights(3);
        const src = join(dir, `${name}.safetensors`);
        saveSafetensors(src, tensorsOf(ref));
        const dst = join(dir, `${name}-${protocol}.pdparams`);
        makeCheckpoints('paddle', scheme, src, dst, String(protocol), JSON.stringify(info(ref)));
        const m = createModel(name, { inputSize: 32 });
        await m.loadCheckpoint(dst, ref.cfg.weights!.keys);
        assertSameWeights(ref, m);
        // Detected from the keys too.
        assertSameWeights(ref, await createModel(name, { inputSize: 32 }).loadCheckpoint(dst));
      });
    }
  }
});

describe('hostile and broken checkpoints', () => {
  it('refuses a pickle that calls os.system, naming the global, running nothing', { skip: NO_TORCH }, async () => {
    makeCheckpoints('hostile', dir);
    rmSync('/tmp/tsimm-pwned', { force: true });
    for (const f of ['evil.pkl', 'evil.pth']) {
      assert.throws(() => readCheckpoint(join(dir, f)), (e: unknown) => e instanceof InputError && /posix\.system/.test(e.message));
    }
    assert.ok(!existsSync('/tmp/tsimm-pwned'));
  });

  it('reports a truncated .pth and a zip entry pointing outside the file', { skip: NO_TORCH }, async () => {
    makeCheckpoints('formats', dir);
    const bytes = readFileSync(join(dir, 'zip.pth'));
    writeFileSync(join(dir, 'cut.pth'), bytes.subarray(0, bytes.length >> 1));
    assert.throws(() => readCheckpoint(join(dir, 'cut.pth')), (e: unknown) => e instanceof InputError && /truncated/.test(e.message));
    // Point the first central-directory entry's local header past the end of the file.
    const patched = Buffer.from(bytes);
    const cd = patched.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    patched.writeUInt32LE(patched.length + 1000, cd + 42);
    writeFileSync(join(dir, 'outside.pth'), patched);
    assert.throws(() => readCheckpoint(join(dir, 'outside.pth')), InputError);
  });

  it('rejects files that are no checkpoint, and empty ones', async () => {
    writeFileSync(join(dir, 'text.bin'), 'hello, this is not a checkpoint at all');
    assert.throws(() => readCheckpoint(join(dir, 'text.bin')), /not a checkpoint tsimm reads/);
    writeFileSync(join(dir, 'empty.pth'), '');
    assert.throws(() => readCheckpoint(join(dir, 'empty.pth')), /0 bytes/);
    assert.throws(() => readCheckpoint(join(dir, 'missing.pth')), /does not exist/);
  });

  it('rejects a checkpoint of another architecture with the keys that do not fit', async () => {
    const r34 = createModel('resnet34', { inputSize: 32 }).initWeights();
    saveSafetensors(join(dir, 'r34.safetensors'), tensorsOf(r34));
    assert.throws(() => createModel('resnet18', { inputSize: 32 }).loadCheckpoint(join(dir, 'r34.safetensors')), /unexpected \d+: layer1\.2\./);
  });

  it('keeps a fresh classifier for another class count, and adapts the first conv to 1 channel (as timm does)', async () => {
    const ref = createModel('resnet18', { inputSize: 32 }).initWeights(2);
    saveSafetensors(join(dir, 'r18b.safetensors'), tensorsOf(ref));
    const m = await createModel('resnet18', { inputSize: 32, numClasses: 10, inChans: 1 }).loadCheckpoint(join(dir, 'r18b.safetensors'));
    assert.deepEqual(m.weights!.get('layer4.1.conv2.weight'), ref.weights!.get('layer4.1.conv2.weight'));
    assert.equal(m.weights!.get('fc.weight')!.length, 10 * 512);
    const w = ref.weights!.get('conv1.weight')!;
    assert.ok(Math.abs(m.weights!.get('conv1.weight')![0]! - (w[0]! + w[49]! + w[98]!)) < 1e-6, 'gray conv = sum of RGB');
  });
});

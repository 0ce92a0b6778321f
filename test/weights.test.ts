import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createModel } from '../src/model.js';
import { encodeNpy, parseNpy } from '../src/weights/npy.js';
import { readNpy, writeNpy } from '../src/node/npy.js';
import { halfToFloat } from '../src/weights/safetensors.js';
import { loadSafetensors, readSafetensorsIndex, saveSafetensors } from '../src/node/safetensors.js';
import { InputError, type HostTensor } from '../src/weights/tensor.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-weights-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A safetensors file written byte by byte, independent of our writer. */
function handWritten(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

describe('safetensors', () => {
  it('round-trips float32 tensors with metadata', () => {
    const path = join(dir, 'a.safetensors');
    const t = new Map<string, HostTensor>([
      ['b.weight', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) }],
      ['a.bias', { shape: [1], data: Float32Array.from([0.25]) }],
    ]);
    saveSafetensors(path, t, { format: 'pt' });
    const idx = readSafetensorsIndex(path);
    assert.deepEqual([...idx.tensors.keys()], ['a.bias', 'b.weight']);
    assert.deepEqual(idx.metadata, { format: 'pt' });
    assert.equal((idx.dataStart - 8) % 8, 0, 'header padded to 8 bytes');
    const back = loadSafetensors(path);
    assert.deepEqual(back.get('b.weight'), t.get('b.weight'));
  });

  it('widens F16 and BF16 and skips integer buffers', () => {
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555]).buffer); // 1, -2, 0.333…
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0x4049]).buffer); // 1, 3.140625
    const i64 = new Uint8Array(8);
    const data = new Uint8Array([...f16, ...bf16, ...i64]);
    const path = join(dir, 'mixed.safetensors');
    writeFileSync(
      path,
      handWritten(
        {
          h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
          b: { dtype: 'BF16', shape: [2], data_offsets: [6, 10] },
          'bn.num_batches_tracked': { dtype: 'I64', shape: [], data_offsets: [10, 18] },
        },
        data,
      ),
    );
    const t = loadSafetensors(path);
    assert.deepEqual(Array.from(t.get('h')!.data), [1, -2, Math.fround(halfToFloat(0x3555))]);
    assert.deepEqual(Array.from(t.get('b')!.data), [1, 3.140625]);
    assert.ok(!t.has('bn.num_batches_tracked'));
  });

  it('rejects a header larger than the file, offsets outside it, and a truncated file', () => {
    const big = new Uint8Array(16);
    new DataView(big.buffer).setBigUint64(0, 1_000_000n, true);
    writeFileSync(join(dir, 'big.safetensors'), big);
    assert.throws(() => readSafetensorsIndex(join(dir, 'big.safetensors')), /header length 1000000 exceeds the file/);
    writeFileSync(join(dir, 'out.safetensors'), handWritten({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8)));
    assert.throws(() => readSafetensorsIndex(join(dir, 'out.safetensors')), InputError);
    writeFileSync(join(dir, 'tiny.safetensors'), new Uint8Array(3));
    assert.throws(() => readSafetensorsIndex(join(dir, 'tiny.safetensors')), /only 3 bytes/);
  });

  it('loads into a model only when every key and shape fits, listing the problems', () => {
    const model = createModel('resnet18', { inputSize: 32 });
    model.initWeights();
    const tensors = model.stateDict();
    tensors.delete('layer1.0.conv1.weight');
    tensors.set('fc.weight', { shape: [10, 512], data: new Float32Array(5120) });
    tensors.set('head.extra', { shape: [1], data: new Float32Array(1) });
    assert.throws(
      () => model.setWeights(tensors, 'ckpt'),
      (e: unknown) =>
        e instanceof InputError &&
        /missing 1: layer1\.0\.conv1\.weight/.test(e.message) &&
        /unexpected 1: head\.extra/.test(e.message) &&
        /fc\.weight \[10, 512\] \(model wants \[1000, 512\]\)/.test(e.message),
    );
  });
});

describe('npy', () => {
  it('round-trips float32 arrays', () => {
    const path = join(dir, 'x.npy');
    const t = { shape: [2, 3, 1, 1], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
    writeNpy(path, t);
    assert.deepEqual(readNpy(path), t);
    assert.ok(!readdirSync(dir).some((f) => f.includes('.tmp-')));
    const bytes = encodeNpy(t);
    assert.equal((bytes[0]!.byteLength) % 64, 0, 'header aligned to 64 bytes as numpy writes it');
  });

  it('names the dtype problem and the fix', () => {
    const t = encodeNpy({ shape: [2], data: new Float32Array(2) });
    const bytes = new Uint8Array([...t[0]!, ...new Uint8Array(16)]);
    const at = Buffer.from(bytes).indexOf("'<f4'");
    bytes[at + 3] = '8'.charCodeAt(0);
    assert.throws(() => parseNpy(bytes, 'x.npy'), /dtype <f8.*astype\(numpy\.float32\)/);
    assert.throws(() => parseNpy(new TextEncoder().encode('hello world'), 'x.npy'), /not a \.npy file/);
    assert.ok(!existsSync(join(dir, 'never.npy')));
  });
});

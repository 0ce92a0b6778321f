/** The tsimm command line, run as a user runs it: a child process, real files, exit codes. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createModel } from '../src/model.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { readNpy, writeNpy } from '../src/node/npy.js';
import { saveSafetensors } from '../src/node/safetensors.js';
import type { HostTensor } from '../src/weights/tensor.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tsimm = (...args: string[]) => runCli(dir, args);

function checkpoint(name: string, size: number): { path: string; tensors: Map<string, HostTensor> } {
  const m = createModel(name, { inputSize: size }).initWeights(7);
  const tensors = m.stateDict();
  const path = join(dir, `${name}.safetensors`);
  saveSafetensors(path, tensors);
  return { path, tensors };
}

describe('tsimm CLI', () => {
  it('lists models by wildcard', () => {
    const r = tsimm('list', '*resnext*', '--json');
    assert.equal(r.code, 0);
    const names = JSON.parse(r.stdout) as string[];
    assert.ok(names.includes('ResNeXt101_32x48d_wsl') && names.includes('resnext50d_32x4d'));
  });

  it('shows info with counts from the graph', () => {
    const r = tsimm('info', 'ResNet50_vd', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.counts.params, 25_576_264);
    assert.equal(j.counts.flops, 2 * j.counts.macs);
    assert.equal(j.pretrainedCfg.resizeBackend, 'cv2');
    const text = tsimm('info', 'resnet50d', '--layers');
    assert.match(text.stdout, /FLOPs = 2 x MACs/);
    assert.match(text.stdout, /layer4\.2\.conv3\s+Conv\s+Nx2048x7x7/);
  });

  it('infers from .npy with safetensors weights, equal to the API', async () => {
    const { path } = checkpoint('resnet18', 64);
    const x = { shape: [2, 3, 64, 64], data: Float32Array.from({ length: 2 * 3 * 64 * 64 }, (_, i) => Math.sin(i)) };
    writeNpy(join(dir, 'x.npy'), x);
    const r = tsimm('infer', 'resnet18', '--weights', path, '--input', 'x.npy', '--output', 'y.npy');
    assert.equal(r.code, 0, r.stderr);
    const y = readNpy(join(dir, 'y.npy'));
    assert.deepEqual(y.shape, [2, 1000]);
    const api = createModel('resnet18', { inputSize: 64 }).loadSafetensors(path);
    const expected = (await runSession(await createSession(api.toOnnx()), x))['logits']!;
    assert.deepEqual(y.data, expected.data);
    const f = tsimm('infer', 'resnet18', '--weights', path, '--input', 'x.npy', '--output', 'f.npy', '--features');
    assert.equal(f.code, 0, f.stderr);
    assert.deepEqual(readNpy(join(dir, 'f.npy')).shape, [2, 512]);
  });

  it('refuses weights that do not fit, writing nothing', () => {
    const { path } = checkpoint('resnet34', 32);
    writeNpy(join(dir, 'x32.npy'), { shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) });
    const r = tsimm('infer', 'resnet18', '--weights', path, '--input', 'x32.npy', '--output', 'bad.npy');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not fit this model: .*unexpected \d+: layer1\.2\./);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.ok(!existsSync(join(dir, 'bad.npy')));
  });

  it('names an unknown model and the closest ones', () => {
    const r = tsimm('info', 'resnet50x');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown model "resnet50x"; did you mean .*resnet50/);
  });

  it('rejects a non-float32 or non-4-D input clearly', () => {
    const { path } = checkpoint('resnet18', 32);
    writeNpy(join(dir, 'flat.npy'), { shape: [12], data: new Float32Array(12) });
    const r = tsimm('infer', 'resnet18', '--weights', path, '--input', 'flat.npy', '--output', 'o.npy');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /has shape \(12\); infer needs a 4-D float32 NCHW batch/);
  });

  it('exports ONNX that ONNX Runtime runs with a dynamic batch', async () => {
    const r = tsimm('export', 'resnet50d', '-o', 'r50d.onnx', '--size', '96');
    assert.equal(r.code, 0, r.stderr);
    const sidecar = JSON.parse(readFileSync(join(dir, 'r50d.onnx.json'), 'utf8'));
    assert.deepEqual(sidecar.preprocess.size, [96, 96]);
    assert.equal(sidecar.preprocess.interpolation, 'bicubic');
    const s = await createSession(join(dir, 'r50d.onnx'));
    const out = await runSession(s, { shape: [3, 3, 96, 96], data: new Float32Array(3 * 3 * 96 * 96).fill(0.5) });
    assert.deepEqual(out['logits']!.shape, [3, 1000]);
    await s.release();
  });

  it('gives usage errors exit code 2 and --help exit code 0', () => {
    assert.equal(tsimm('export', 'resnet18').code, 2);
    assert.equal(tsimm('list', '--nope').code, 2);
    const h = tsimm('infer', '--help');
    assert.equal(h.code, 0);
    assert.match(h.stdout, /usage: tsimm infer/);
  });

  it('verifies the seed tables with no unexplained difference in the implemented families', () => {
    const r = tsimm('verify', 'ResNe*');
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /verify: \d+ seed models: \d+ match, \d+ differ with the reason given, 0 unexplained/);
  });
});

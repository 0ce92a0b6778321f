/**
 * predict / eval / preprocess, through the CLI and the API, on images made here. The checkpoint's classifier
 * has zero weights and a one-hot bias, so every image is predicted as one known class: accuracies are exact.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { imagenetClasses } from '../src/data/labels.js';
import { preprocessImage, resolvePreprocess } from '../src/data/preprocess.js';
import { createModel } from '../src/model.js';
import { classify } from '../src/tasks/classify.js';
import { readNpy } from '../src/node/npy.js';
import { saveSafetensors } from '../src/node/safetensors.js';
import { runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-tasks-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SIZE = 48;
const WINNER = imagenetClasses().find((c) => c.wnid === 'n01871265')!; // tusker
const OTHER = 'n09193705'; // alp
let ckpt: string;
let features: string;

const tsimm = (...args: string[]) => runCli(dir, args);

const image = (file: string, r: number, g: number, b: number, w = 70, h = 50) => sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } }).jpeg().toFile(file);

before(async () => {
  const m = createModel('resnet18', { inputSize: SIZE }).initWeights(9);
  const w = m.weights!;
  w.set('fc.weight', new Float32Array(1000 * 512));
  const bias = new Float32Array(1000);
  bias[WINNER.index] = 5;
  bias[3] = 1;
  w.set('fc.bias', bias);
  ckpt = join(dir, 'r18.safetensors');
  saveSafetensors(ckpt, m.stateDict());
  // A second checkpoint whose logits depend on the image (random head), for batch-consistency checks.
  features = join(dir, 'r18-random.safetensors');
  const r = createModel('resnet18', { inputSize: SIZE }).initWeights(10);
  saveSafetensors(features, r.stateDict());
  for (const [wnid, n] of [[WINNER.wnid, 3], [OTHER, 2]] as const) {
    mkdirSync(join(dir, 'val', wnid), { recursive: true });
    for (let i = 0; i < n; i++) await image(join(dir, 'val', wnid, `${i}.jpg`), 40 * i, 100, 200 - 30 * i);
  }
  writeFileSync(join(dir, 'val', OTHER, 'broken.jpg'), 'not a jpeg');
  mkdirSync(join(dir, 'flat'));
  await image(join(dir, 'flat', 'a.jpg'), 10, 20, 30);
  await image(join(dir, 'flat', 'b.jpg'), 200, 20, 30, 40, 90);
  writeFileSync(join(dir, 'flat', 'labels.txt'), `a.jpg ${WINNER.index}\nb.jpg ${OTHER}\nmissing.jpg 5\n`);
});

describe('predict', () => {
  it('prints top-k with ImageNet labels, reports a bad image and exits 1', () => {
    const r = tsimm('predict', 'resnet18', join(dir, 'flat/a.jpg'), join(dir, 'flat/labels.txt'), '--weights', ckpt, '--size', String(SIZE), '--topk', '2', '--json');
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out[0].predictions[0].index, WINNER.index);
    assert.equal(out[0].predictions[0].label, 'tusker');
    assert.equal(out[0].predictions[0].wnid, 'n01871265');
    assert.equal(out[0].predictions[1].index, 3);
    const e1 = Math.exp(5);
    assert.ok(Math.abs(out[0].predictions[0].prob - e1 / (e1 + Math.E + 998)) < 1e-6);
    assert.match(out[1].error, /not an image/);
    assert.match(r.stderr, /labels\.txt/);
  });

  it('gives the same result per image whether images are batched or not', async () => {
    const m = await createModel('resnet18', { inputSize: SIZE }).loadCheckpoint(features);
    const files = [join(dir, 'flat/a.jpg'), join(dir, 'flat/b.jpg'), join(dir, 'val', OTHER, '0.jpg')];
    const batched = await classify(m, files, { topk: 3, batchSize: 3, features: true });
    for (const [i, f] of files.entries()) {
      const [single] = await classify(m, [f], { topk: 3, features: true });
      assert.deepEqual(single!.predictions!.map((p) => p.index), batched[i]!.predictions!.map((p) => p.index));
      assert.ok(single!.features!.every((v, j) => Math.abs(v - batched[i]!.features![j]!) < 1e-4 * Math.max(1, Math.abs(v))));
    }
  });
});

describe('eval', () => {
  it('scores an ImageFolder of wnids, counting the broken file and going on', () => {
    const r = tsimm('eval', 'resnet18', join(dir, 'val'), '--weights', ckpt, '--size', String(SIZE), '--json', '--batch', '2');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.evaluated, 5);
    assert.equal(j.top1, 60);
    assert.equal(j.top5, 60 + 0, 'the other class is not in the top 5 either');
    assert.equal(j.failed.length, 1);
    assert.match(r.stderr, /skipped .*broken\.jpg/);
    assert.equal(j.preprocess.backend, 'pil');
    assert.equal(j.preprocess.interpolation, 'bicubic');
  });

  it('scores a flat folder with a labels file (index or wnid labels)', () => {
    const r = tsimm('eval', 'resnet18', join(dir, 'flat'), '--labels', join(dir, 'flat/labels.txt'), '--weights', ckpt, '--size', String(SIZE), '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual([j.evaluated, j.top1, j.failed.length], [2, 50, 1]);
  });

  it('exits non-zero when nothing could be evaluated', () => {
    mkdirSync(join(dir, 'bad', OTHER), { recursive: true });
    writeFileSync(join(dir, 'bad', OTHER, 'x.jpg'), '');
    const r = tsimm('eval', 'resnet18', join(dir, 'bad'), '--weights', ckpt, '--size', String(SIZE));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /none of the 1 images could be evaluated/);
  });
});

describe('preprocess command', () => {
  it('writes exactly the tensor the API computes, with flags overriding the config', async () => {
    const img = join(dir, 'flat/b.jpg');
    const r = tsimm('preprocess', img, '--model', 'ResNet50_vd', '-o', 'x.npy', '--size', '64', '--resize-backend', 'pil', '--interpolation', 'bicubic');
    assert.equal(r.code, 0, r.stderr);
    const x = readNpy(join(dir, 'x.npy'));
    assert.deepEqual(x.shape, [1, 3, 64, 64]);
    const { resolveModel } = await import('../src/models/index.js');
    const expected = await preprocessImage(img, resolvePreprocess(resolveModel('ResNet50_vd').cfg, { size: 64, backend: 'pil', interpolation: 'bicubic' }));
    assert.deepEqual(x.data, expected);
    assert.equal(tsimm('preprocess', img, '--model', 'resnet18', '-o', 'y.npy', '--interpolation', 'nearest').code, 2);
  });
});

describe('int8 in predict and eval', () => {
  it('eval --precision int8 calibrates on --calib and scores like fp32 on this head', () => {
    const r = tsimm('eval', 'resnet18', join(dir, 'val'), '--weights', ckpt, '--size', String(SIZE), '--json', '--precision', 'int8', '--calib', join(dir, 'flat'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).top1, 60);
    assert.equal(tsimm('predict', 'resnet18', join(dir, 'flat/a.jpg'), '--weights', ckpt, '--precision', 'int8').code, 2, '--calib is required');
  });
});

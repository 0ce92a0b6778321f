/**
 * The training loop: the loss falls on a learnable synthetic task, the run directory holds what a user and timm
 * need, an interrupted run resumed gives the same losses and weights as an uninterrupted one, and the recipe
 * pieces (schedules, mixup/cutmix, EMA, timm's init) follow timm's definitions.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { memoryBatches } from './helpers/batches.js';
import { createModel } from '../src/model.js';
import { Ema } from '../src/train/ema.js';
import { fit, type BatchSource } from '../src/train/fit.js';
import { timmInit } from '../src/train/init.js';
import { cutmixBox, mixBatch, mixupTargets } from '../src/train/mixup.js';
import { Rng } from '../src/util/rng.js';
import { lrAt } from '../src/train/scheduler.js';
import { loadSafetensors } from '../src/node/safetensors.js';

const tmp = mkdtempSync(join(tmpdir(), 'tsimm-fit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const S = 32;
const C = 4;

/** A learnable task: class k brightens quadrant k. Order depends only on (epoch), as a real loader's does. */
function source(count: number, batch: number, seed: number): BatchSource {
  const rng = new Rng(seed);
  const images = Array.from({ length: count }, (_, i) => {
    const k = i % C;
    const x = new Float32Array(3 * S * S);
    for (let j = 0; j < x.length; j++) x[j] = 0.3 * rng.normal();
    for (let c = 0; c < 3; c++) for (let y = 0; y < S / 2; y++) for (let xx = 0; xx < S / 2; xx++) x[c * S * S + (y + (k >> 1) * (S / 2)) * S + xx + (k & 1) * (S / 2)]! += 1.5;
    return { x, t: k };
  });
  return memoryBatches(images, batch, seed, [3, S, S]);
}

function freshModel() {
  const m = createModel('resnet18', { inputSize: S, numClasses: C });
  m.weights = timmInit(m.fullGraph, 'resnet', 0);
  return m;
}

const recipe = { optimizer: 'sgd' as const, lr: 0.05, momentum: 0.9, weightDecay: 1e-4, labelSmoothing: 0.1 };

describe('fit', () => {
  it('learns a synthetic task and writes a complete run directory', async () => {
    const model = freshModel();
    const out = join(tmp, 'run');
    const r = await fit({ model, train: source(96, 16, 1), val: source(32, 16, 2), epochs: 3, trainer: recipe, schedule: { warmupEpochs: 1 }, ema: 0.9, output: out, checkpointHist: 1, config: { class_names: ['a', 'b', 'c', 'd'] } });
    assert.equal(r.epochs.length, 3);
    assert.ok(r.epochs[2]!.train_loss < r.epochs[0]!.train_loss, `train loss ${r.epochs.map((e) => e.train_loss.toFixed(3)).join(' → ')}`);
    assert.ok(r.epochs[2]!.eval_top1! > 50, `top-1 ${r.epochs.map((e) => e.eval_top1).join(' → ')}`);
    for (const f of ['last.safetensors', 'best.safetensors', 'ema.safetensors', 'config.json', 'state.json', 'optimizer.safetensors', 'log.jsonl', 'summary.csv', 'checkpoint-2.safetensors']) assert.ok(existsSync(join(out, f)), f);
    assert.ok(!existsSync(join(out, 'checkpoint-0.safetensors')), 'checkpoint history keeps the last one');
    const csv = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n');
    assert.equal(csv[0], 'epoch,train_loss,eval_loss,eval_top1,eval_top5,lr');
    assert.equal(csv.length, 4);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { model: string; class_names: string[]; num_classes: number };
    assert.deepEqual([cfg.model, cfg.num_classes, cfg.class_names.length], ['resnet18', 4, 4]);
    const back = createModel('resnet18', { inputSize: S, numClasses: C }).loadCheckpoint(join(out, 'last.safetensors'));
    assert.deepEqual(back.weights!.get('fc.weight'), model.weights!.get('fc.weight'));
  });

  it('an interrupted run, resumed, gives the losses and weights of an uninterrupted one', async () => {
    const full = freshModel();
    const a = await fit({ model: full, train: source(48, 8, 3), epochs: 2, trainer: recipe, mixup: { mixupAlpha: 0.8, cutmixAlpha: 1.0 }, ema: 0.99, output: join(tmp, 'a') });
    const part = freshModel();
    const ctl = new AbortController();
    const first = await fit({
      model: part, train: source(48, 8, 3), epochs: 2, trainer: recipe, mixup: { mixupAlpha: 0.8, cutmixAlpha: 1.0 }, ema: 0.99, output: join(tmp, 'b'), signal: ctl.signal,
      onStep: (s) => { if (s.epoch === 1 && s.batch === 2) ctl.abort(); },
    });
    assert.equal(first.interrupted, true);
    const resumed = freshModel();
    const b = await fit({ model: resumed, train: source(48, 8, 3), epochs: 2, trainer: recipe, mixup: { mixupAlpha: 0.8, cutmixAlpha: 1.0 }, ema: 0.99, output: join(tmp, 'b'), resume: true });
    assert.equal(b.epochs.length, 2);
    b.epochs.forEach((e, i) => assert.ok(Math.abs(e.train_loss - a.epochs[i]!.train_loss) < 1e-6, `epoch ${i}: ${e.train_loss} vs ${a.epochs[i]!.train_loss}`));
    for (const k of ['conv1.weight', 'layer4.1.bn2.running_var', 'fc.weight']) assert.deepEqual(resumed.weights!.get(k), full.weights!.get(k), k);
    const emaA = loadSafetensors(join(tmp, 'a', 'ema.safetensors')).get('fc.weight')!.data;
    const emaB = loadSafetensors(join(tmp, 'b', 'ema.safetensors')).get('fc.weight')!.data;
    assert.deepEqual(emaB, emaA);
  });
});

describe('recipe pieces', () => {
  it("cosine schedule with per-update linear warmup (timm's CosineLRScheduler), step decay", () => {
    const o = { lr: 0.1, total: 100, warmup: 10, warmupLr: 1e-5 };
    assert.equal(lrAt(o, 0), 1e-5);
    assert.ok(Math.abs(lrAt(o, 5) - (1e-5 + 5 * (0.1 - 1e-5) / 10)) < 1e-12);
    assert.ok(Math.abs(lrAt(o, 50) - 0.05) < 1e-12);
    assert.equal(lrAt(o, 100), 0);
    assert.ok(Math.abs(lrAt({ kind: 'step', lr: 0.1, total: 90, decayEvery: 30, decayRate: 0.1 }, 65) - 0.001) < 1e-12);
  });

  it("mixup targets fold in label smoothing; cutmix λ is the box's complement; partners are the flipped batch", () => {
    const t = mixupTargets([0, 2], 3, 0.7, 0.3);
    const off = 0.1;
    assert.deepEqual(Array.from(t).map((v) => +v.toFixed(6)), [off + 0.7 * 0.7, off, off + 0.3 * 0.7, off + 0.3 * 0.7, off, off + 0.7 * 0.7].map((v) => +v.toFixed(6)));
    const box = cutmixBox(10, 10, 0.75, new Rng(3));
    assert.equal(box.lam, 1 - ((box.y1 - box.y0) * (box.x1 - box.x0)) / 100);
    const x = Float32Array.from({ length: 2 * 1 * 2 * 2 }, (_, i) => (i < 4 ? 1 : 0));
    const m = mixBatch(x, [2, 1, 2, 2], [0, 1], { mixupAlpha: 1, numClasses: 2 }, new Rng(5));
    assert.ok(m.lam > 0 && m.lam < 1 && !m.cutmix);
    assert.ok(Math.abs(x[0]! - m.lam) < 1e-6 && Math.abs(x[4]! - (1 - m.lam)) < 1e-6);
  });

  it('EMA follows decay·ema + (1 − decay)·weights', () => {
    const w = new Map([['a', Float32Array.of(1, 2)]]);
    const e = new Ema(w, 0.9);
    w.get('a')!.set([2, 4]);
    e.update(w);
    assert.ok(Math.abs(e.weights.get('a')![0]! - 1.1) < 1e-6 && Math.abs(e.weights.get('a')![1]! - 2.2) < 1e-6);
  });

  it("timm's init: kaiming fan_out convs, zero_init_last on each block's last BatchNorm", () => {
    const g = createModel('resnet50').fullGraph;
    const w = timmInit(g, 'resnet', 1);
    assert.ok(w.get('layer1.0.bn3.weight')!.every((v) => v === 0));
    assert.ok(w.get('layer1.0.bn2.weight')!.every((v) => v === 1));
    assert.ok(w.get('layer1.0.downsample.1.weight')!.every((v) => v === 1));
    const c = w.get('layer2.0.conv2.weight')!;
    const std = Math.sqrt(c.reduce((s, v) => s + v * v, 0) / c.length);
    assert.ok(Math.abs(std - Math.sqrt(2 / (128 * 9))) / Math.sqrt(2 / (128 * 9)) < 0.05, `std ${std}`);
  });
});

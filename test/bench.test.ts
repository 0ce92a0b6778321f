/** bench, quantize and report on tiny runs (speed itself is measured by benchmarks, never asserted here). */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { createModel } from '../src/model.js';
import { Calibrator, poolsAsDepthwise, quantizedTensors, uint8Params } from '../src/onnx/quantize.js';
import { buildOnnx, concatChunks, lowerGraph, type Initializer } from '../src/onnx/export.js';
import { createSession, runSession } from '../src/runtime/session.js';
import { calibrate, checkInt8, int8Onnx } from '../src/tasks/quantize.js';
import { saveSafetensors } from '../src/node/safetensors.js';
import { runCli } from './helpers/cli.js';
import { fixtureInput, loadFixture, NO_SHARED } from './helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-bench-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const tsimm = (...args: string[]) => runCli(dir, args);

const TINY = ['--size', '32', '--min-runs', '3', '--min-seconds', '0', '--warmup', '1'];

before(async () => {
  mkdirSync(join(dir, 'calib'));
  for (let i = 0; i < 4; i++) {
    const px = Buffer.from(Uint8Array.from({ length: 80 * 60 * 3 }, (_, j) => (j * (i + 3) * 2654435761) >>> 24));
    await sharp(px, { raw: { width: 80, height: 60, channels: 3 } }).jpeg().toFile(join(dir, 'calib', `${i}.jpg`));
  }
});

describe('tsimm bench', () => {
  it('reports every batch and precision with the protocol and machine info, and saves JSON', () => {
    const r = tsimm('bench', 'resnet18', ...TINY, '--batch', '1,2', '--precision', 'fp32,int8,fp16', '--json', '--out', 'results');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.rows.length, 6);
    for (const row of j.rows) {
      assert.ok(row.runs >= 3 && row.meanMs > 0 && row.p95Ms >= row.p50Ms);
      assert.ok(Math.abs(row.imagesPerSecond - (1000 * row.batch) / row.meanMs) < 1e-6);
    }
    assert.match(j.protocol, /warm-up/);
    assert.equal(j.machine.executionProvider, 'cpu');
    assert.ok(j.machine.cores >= 1 && j.machine.onnxruntime);
    const saved = readdirSync(join(dir, 'results'));
    assert.equal(saved.length, 1);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'results', saved[0]!), 'utf8')).rows.length, 6);
  });

  it("prints the seed pages' table layout", () => {
    const r = tsimm('bench', 'ResNet50_vd', ...TINY, '--batch', '1', '--markdown', '--no-save');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\| Models \| Crop Size \| Resize Short Size \| FP32<br\/>Batch Size=1<br\/>\(ms\) \|/);
    assert.match(r.stdout, /\| ResNet50_vd \| 32 \| 37 \| \d+\.\d\d \|/);
  });

  it('times an external ONNX model alternately and gives the ratio', () => {
    assert.equal(tsimm('export', 'resnet18', '-o', 'r18.onnx', '--size', '32').code, 0);
    const r = tsimm('bench', 'resnet18', ...TINY, '--batch', '1', '--compare', 'r18.onnx', '--json', '--no-save');
    const row = JSON.parse(r.stdout).rows[0];
    assert.equal(row.compare.runs, row.runs);
    assert.ok(Math.abs(row.compare.ratio - row.meanMs / row.compare.meanMs) < 1e-9);
  });

  it('refuses unknown precisions and bad batch lists', () => {
    assert.equal(tsimm('bench', 'resnet18', '--precision', 'int4').code, 2);
    assert.equal(tsimm('bench', 'resnet18', '--batch', '0').code, 2);
  });

  it('reports from saved results: Markdown table and SVG plots with the seed accuracy', () => {
    const b = tsimm('bench', 'ResNet18', 'ResNet34', ...TINY, '--batch', '1', '--out', 'rep');
    assert.equal(b.code, 0, b.stderr);
    const file = join('rep', readdirSync(join(dir, 'rep'))[0]!);
    const r = tsimm('report', file, '-o', 'report');
    assert.equal(r.code, 0, r.stderr);
    const md = readFileSync(join(dir, 'report', 'report.md'), 'utf8');
    assert.match(md, /\| ResNet18 \| 71\.00 \| 11\.69 \| /);
    for (const f of ['accuracy-vs-latency.svg', 'accuracy-vs-flops.svg', 'accuracy-vs-params.svg']) {
      const svg = readFileSync(join(dir, 'report', f), 'utf8');
      assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.equal((svg.match(/<circle/g) ?? []).length, 2);
    }
  });
});

describe('int8 quantization', () => {
  it('uint8 parameters contain zero exactly and cover the range', () => {
    const p = uint8Params({ min: -1, max: 3 });
    assert.equal(p.zeroPoint, 64);
    assert.ok(Math.abs(p.scale - 4 / 255) < 1e-7);
    assert.deepEqual(uint8Params({ min: 0.5, max: 2 }).zeroPoint, 0, 'ranges are widened to contain 0');
    const c = new Calibrator('minmax');
    c.observe('t', Float32Array.of(1, -2, 3));
    c.observe('t', Float32Array.of(5));
    assert.deepEqual(c.ranges().get('t'), { min: -2, max: 5 });
  });

  it('quantizes every conv input and folds ReLUs, and ONNX Runtime fuses QLinearConv', async () => {
    const m = createModel('resnet18', { inputSize: 32 }).initWeights(2);
    const lowered = lowerGraph(m.graph, m.weights!, true);
    const tensors = quantizedTensors(lowered, m.graph);
    assert.ok(tensors.includes('input'));
    const ranges = await calibrate(m, [fixtureInput([4, 3, 32, 32], 3)]);
    const bytes = int8Onnx(m, ranges);
    assert.ok(bytes.byteLength < m.toOnnx().byteLength / 3, 'int8 weights: about a quarter of fp32');
    const optimized = join(dir, 'opt.onnx');
    const s = await createSession(bytes, { optimizedModelPath: optimized });
    const out = await runSession(s, fixtureInput([2, 3, 32, 32], 4));
    assert.deepEqual(out['logits']!.shape, [2, 1000]);
    const text = readFileSync(optimized).toString('latin1');
    assert.equal((text.match(/QLinearConv/g) ?? []).length >= 20, true, 'every conv runs as QLinearConv');
    assert.ok(text.includes('QLinearAdd'));
    assert.ok(existsSync(optimized));
  });

  it('keeps top-1 and logits close to fp32 on a calibrated (fixture) resnet50', { skip: NO_SHARED }, async (t) => {
    const f = loadFixture('resnet50');
    const m = createModel('resnet50').setWeights(f.weights);
    const ranges = await calibrate(m, [1, 2].map((s) => fixtureInput([4, 3, 224, 224], 100 + s)));
    const check = await checkInt8(m, await createSession(int8Onnx(m, ranges)), (async function* () {
      yield fixtureInput([4, 3, 224, 224], 300);
    })());
    t.diagnostic(`int8 vs fp32 on 4 held-out inputs: top-1 agreement ${check.top1Agreement}, max logit error ${check.maxLogitErrorRel.toFixed(3)} of the largest logit`);
    assert.ok(check.maxLogitErrorRel < 0.3, `max logit error ${check.maxLogitErrorRel}`);
    assert.ok(check.top1Agreement >= 0.5);
  });

  it('rewrites an average pool as a depthwise conv only where that is exact', async () => {
    // 72 px: the "d" downsample pools see 18 (even: exact), then 9 and 5 (odd: a partial ceil-mode window
    // averages fewer values, so they stay pools); the avd pools count their zero padding (always exact).
    const m = createModel('resnest14d', { inputSize: 72 }).initWeights(4);
    const lowered = lowerGraph(m.graph, m.weights!, true);
    const added: Initializer[] = [];
    const rewritten = poolsAsDepthwise(lowered.nodes, m.graph, added);
    const pools = (nodes: { op: string }[]) => nodes.filter((n) => n.op === 'AveragePool').length;
    assert.equal(pools(lowered.nodes), 6);
    assert.equal(pools(rewritten), 2, 'the two pools with a partial window are kept');
    const plain = buildOnnx(m.graph, m.weights!);
    const asConv = buildOnnx(m.graph, m.weights!, { transform: (l) => ({ nodes: poolsAsDepthwise(l.nodes, m.graph, l.initializers), initializers: l.initializers }) });
    const x = fixtureInput([2, 3, 72, 72], 9);
    const a = (await runSession(await createSession(concatChunks(plain.chunks, plain.byteLength)), x))['logits']!.data;
    const b = (await runSession(await createSession(concatChunks(asConv.chunks, asConv.byteLength)), x))['logits']!.data;
    const scale = a.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
    assert.ok(a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5 * scale), 'the rewritten graph computes the same logits');
    // Quantized: the pools become QLinearConv, the radix Split runs on uint8 (its outputs keep the input's scale).
    const ranges = await calibrate(m, [fixtureInput([4, 3, 72, 72], 10)]);
    const optimized = join(dir, 'resnest-opt.onnx');
    const s8 = await createSession(int8Onnx(m, ranges), { optimizedModelPath: optimized });
    const q = (await runSession(s8, x))['logits']!.data;
    assert.ok(q.every((v, i) => Math.abs(v - a[i]!) <= 0.3 * scale), 'int8 logits stay near fp32');
    const text = readFileSync(optimized).toString('latin1');
    assert.equal((text.match(/QLinearAveragePool/g) ?? []).length > 0, true, 'the partial-window pools stay pools');
    assert.ok((text.match(/DequantizeLinear/g) ?? []).length < (text.match(/QLinearConv/g) ?? []).length / 2, 'no float round trip around each Split');
    // PaddleClas' avd pool excludes padding from the mean: not a convolution, kept.
    const paddle = createModel('ResNeSt50').initWeights(4);
    const pl = lowerGraph(paddle.graph, paddle.weights!, true);
    assert.equal(pools(poolsAsDepthwise(pl.nodes, paddle.graph, [])), 3, 'the three exclusive avd pools stay');
  });

  it('keeps narrow grouped convs in float, where ONNX Runtime would quantize them itself', async () => {
    const m = createModel('resnext50_32x4d', { inputSize: 32 }).initWeights(5);
    const x = fixtureInput([2, 3, 32, 32], 11);
    const bytes = int8Onnx(m, await calibrate(m, [x]));
    const text = Buffer.from(bytes).toString('latin1');
    for (const b of ['layer1.0', 'layer1.1', 'layer1.2']) assert.ok(text.includes(`${b}.conv2:keep_float`), `${b}.conv2 (4 channels per group) stays float`);
    assert.ok(!text.includes('layer2.0.conv2:keep_float'), '8 channels per group is quantized');
    const optimized = join(dir, 'resnext-opt.onnx');
    const out = await runSession(await createSession(bytes, { optimizedModelPath: optimized }), x);
    assert.ok(out['logits']!.data.every(Number.isFinite));
    const opt = readFileSync(optimized).toString('latin1');
    assert.equal((opt.match(/QLinearConv/g) ?? []).length, 53 - 3, 'all 53 convs but the three narrow grouped ones run as QLinearConv');
  });

  it('tsimm quantize writes the int8 model and checks it on disjoint images', () => {
    const m = createModel('resnet18', { inputSize: 32 }).initWeights(3);
    const w = join(dir, 'r18.safetensors');
    saveSafetensors(w, m.stateDict());
    const r = tsimm('quantize', 'resnet18', '--size', '32', '--weights', w, '--calib', 'calib', '--check', 'calib', '-o', 'q.onnx', '--json', '--method', 'percentile');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.check.images, 4);
    assert.ok(existsSync(join(dir, 'q.onnx')));
  });
});

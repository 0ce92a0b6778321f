/**
 * Latency of `tsimm infer`'s session for a model at several batch sizes (benchmark, not a test).
 * Protocol: input created once outside the timer; 10 warm-up runs; timed runs until ≥ 50 runs and ≥ 5 s.
 * Usage: npx tsx bench/infer.ts [MODEL] [BATCHES=1,8]   → prints JSON, writes bench/results/<host>/<date>-infer-<model>.json
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { createModel } from '../src/model.js';

const name = process.argv[2] ?? 'resnet50d';
const batches = (process.argv[3] ?? '1,8').split(',').map(Number);
const model = createModel(name).initWeights();
const t0 = performance.now();
const session = await model.createSession();
const buildMs = performance.now() - t0;
const [h, w] = model.inputSize;
const results = [];
for (const b of batches) {
  const data = Float32Array.from({ length: b * 3 * h * w }, (_, i) => Math.sin(i * 0.001));
  const feeds = { input: new ort.Tensor('float32', data, [b, 3, h, w]) };
  for (let i = 0; i < 10; i++) await session.run(feeds, ['logits']);
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 50 || performance.now() - start < 5000) {
    const s = performance.now();
    await session.run(feeds, ['logits']);
    times.push(performance.now() - s);
  }
  times.sort((a, b2) => a - b2);
  const mean = times.reduce((a, x) => a + x, 0) / times.length;
  const gmacs = model.counts().macs / 1e9;
  results.push({
    batch: b,
    runs: times.length,
    meanMs: +mean.toFixed(2),
    p50Ms: +times[Math.floor(times.length / 2)]!.toFixed(2),
    p95Ms: +times[Math.floor(times.length * 0.95)]!.toFixed(2),
    imagesPerS: +((1000 * b) / mean).toFixed(1),
    gflopsPerS: +((2 * gmacs * b * 1000) / mean).toFixed(1),
  });
}
const report = {
  model: name,
  inputSize: model.inputSize,
  protocol: 'random input created once; 10 warm-up runs; timed runs until >= 50 runs and >= 5 s; session.run only (no preprocessing)',
  sessionBuildMs: +buildMs.toFixed(0),
  machine: { cpu: cpus()[0]?.model, cores: availableParallelism(), node: process.version, ort: ort.env.versions, threads: availableParallelism() },
  date: new Date().toISOString(),
  results,
};
const dir = join('bench', 'results', hostname().replace(/[^\w.-]/g, '_'));
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `${report.date.slice(0, 10)}-infer-${name}.json`), `${JSON.stringify(report, null, 2)}\n`);
console.log(JSON.stringify(report, null, 2));

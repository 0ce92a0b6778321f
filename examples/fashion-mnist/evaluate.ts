/**
 * Top-1 of the example model on all 10,000 Fashion-MNIST test images, read straight from Debian's IDX files
 * (dataset-fashion-mnist) through the library: a DataLoader over `idxDataset(dir, { split: 'test' })` with the
 * evaluation transform the run recorded (config.json beside the weights), scored by `evaluateWeights` — what
 * `tsimm train` reports per epoch. With `--int8`, also quantizes the model (calibrated on the first N training
 * images, `tsimm quantize`'s `calibrate` + `int8Onnx`) and compares int8 with fp32 on the same test images.
 *
 *   npx tsx examples/fashion-mnist/evaluate.ts [--weights examples/fashion-mnist/model.safetensors]
 *        [--data /usr/share/datasets/fashion-mnist] [--batch 250] [--limit N] [--int8 [--calib 1000] [--method minmax|percentile]]
 *        [--json]
 */
import { dirname, join } from 'node:path';
import { idxDataset, type TrainDataset } from '../../src/data/datasets.js';
import { FASHION_MNIST_DIR } from '../../src/data/idx.js';
import { DataLoader, evalTransform } from '../../src/data/loader.js';
import { resolvePreprocess } from '../../src/data/preprocess.js';
import { topk } from '../../src/math.js';
import { createModel } from '../../src/model.js';
import { createSession, runSession } from '../../src/runtime/session.js';
import { calibrate, int8Onnx } from '../../src/tasks/quantize.js';
import { evaluateWeights, type BatchSource } from '../../src/train/fit.js';
import { runConfigFor } from '../../src/train/run-config.js';
import type { CalibrationMethod } from '../../src/onnx/quantize.js';

const here = dirname(import.meta.filename);
const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const weights = opt('--weights') ?? join(here, 'model.safetensors');
const data = opt('--data') ?? FASHION_MNIST_DIR;
const batch = Number(opt('--batch') ?? 250);
const run = runConfigFor(weights);
if (!run) throw new Error(`no config.json (tsimm train's run config) beside ${weights}`);

const model = createModel(run.model, { numClasses: run.numClasses, inChans: run.inChans, inputSize: run.size[0] });
model.loadCheckpoint(weights);
const pre = run.preprocess ?? resolvePreprocess(model.cfg, { size: run.size[0] });
const shape: [number, number, number] = [run.inChans, run.size[0], run.size[1]];
const loaderFor = (ds: TrainDataset) => new DataLoader(ds, { batchSize: batch, shape, transform: evalTransform(pre, { channels: run.inChans as 1 | 3 }), shuffle: false });
const sourceOf = (l: DataLoader): BatchSource => ({
  batchesPerEpoch: l.batchesPerEpoch,
  async *batches(epoch: number) {
    for await (const b of l.epoch(epoch)) yield { x: { shape: b.shape, data: b.data }, targets: b.targets };
  },
});

const limit = opt('--limit') ? Number(opt('--limit')) : undefined;
const test = await idxDataset(data, { split: 'test', ...(limit ? { limit } : {}) });
const testLoader = loaderFor(test);
const t0 = performance.now();
const fp32 = await evaluateWeights(model, model.weights as Map<string, Float32Array>, sourceOf(testLoader));
const seconds = (performance.now() - t0) / 1000;
const result: Record<string, unknown> = { model: run.model, weights, images: fp32.count, top1: fp32.top1, top5: fp32.top5, loss: fp32.loss, seconds };
if (!args.includes('--json')) console.log(`${run.model} (${weights}): ${fp32.count} Fashion-MNIST test images, top-1 ${fp32.top1.toFixed(2)} %, top-5 ${fp32.top5.toFixed(2)} %, loss ${fp32.loss.toFixed(4)} (${seconds.toFixed(1)} s)`);

if (args.includes('--int8')) {
  const nCal = Number(opt('--calib') ?? 1000);
  const method = (opt('--method') ?? 'minmax') as CalibrationMethod;
  // Calibration on training images (disjoint from the test set the check uses).
  const calLoader = loaderFor(await idxDataset(data, { split: 'train', limit: nCal }));
  const ranges = await calibrate(model, (async function* () {
    for await (const b of calLoader.epoch(0)) yield { shape: b.shape, data: b.data };
  })(), method);
  await calLoader.close();
  const int8 = await createSession(int8Onnx(model, ranges));
  const ref = await model.createSession({ outputs: ['logits'] });
  let n = 0, agree = 0, c32 = 0, c8 = 0;
  for await (const b of testLoader.epoch(0)) {
    const x = { shape: b.shape, data: b.data };
    const a = (await runSession(ref, x, ['logits']))['logits']!;
    const q = (await runSession(int8, x, ['logits']))['logits']!;
    const k = a.shape[1]!;
    for (let i = 0; i < b.targets.length; i++) {
      const pa = topk(a.data.subarray(i * k, (i + 1) * k), 1)[0];
      const pq = topk(q.data.subarray(i * k, (i + 1) * k), 1)[0];
      if (pa === pq) agree++;
      if (pa === b.targets[i]) c32++;
      if (pq === b.targets[i]) c8++;
      n++;
    }
  }
  await ref.release();
  await int8.release();
  const r = { calibration: `${nCal} training images, ${method}`, images: n, fp32Top1: (100 * c32) / n, int8Top1: (100 * c8) / n, agreement: (100 * agree) / n };
  result['int8'] = r;
  if (!args.includes('--json')) console.log(`int8 (calibrated on ${r.calibration}): top-1 ${r.int8Top1.toFixed(2)} % vs fp32 ${r.fp32Top1.toFixed(2)} %, top-1 agreement ${r.agreement.toFixed(2)} % on ${n} images`);
}
await testLoader.close();
if (args.includes('--json')) console.log(JSON.stringify(result, null, 2));

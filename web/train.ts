/**
 * Training in the page: the training graph tsimm builds in Node (`trainingBundle`), run by onnxruntime-web, with
 * the same host step as Node (src/train/engine.ts: running statistics, accumulation, clipping, SGD/AdamW).
 */
import * as ort from 'onnxruntime-web';
import { bundleWeights, type BundleSpec } from '../src/train/bundle.js';
import { ortRun, TrainEngine, type EngineOptions } from '../src/train/engine.js';

export { TrainEngine, TrainError, type EngineOptions, type StepResult, type Targets } from '../src/train/engine.js';
export type { BundleSpec } from '../src/train/bundle.js';

export interface WebTrainerOptions extends EngineOptions {
  executionProviders?: string[];
  threads?: number;
  wasmPaths?: string;
}

/** A trainer on a bundle's ONNX bytes (or URL), spec and weights blob; the blob is updated in place. */
export async function loadTrainer(model: string | Uint8Array, spec: BundleSpec, weights: Float32Array, o: WebTrainerOptions = {}): Promise<{ engine: TrainEngine; weights: Map<string, Float32Array>; session: ort.InferenceSession }> {
  if (o.threads !== undefined) ort.env.wasm.numThreads = o.threads;
  if (o.wasmPaths) ort.env.wasm.wasmPaths = o.wasmPaths;
  const opts: ort.InferenceSession.SessionOptions = { executionProviders: o.executionProviders ?? ['wasm'], graphOptimizationLevel: 'all', enableMemPattern: false };
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, opts) : await ort.InferenceSession.create(model, opts);
  const run = ortRun(async () => session, (data, dims) => new ort.Tensor('float32', data, dims));
  const map = bundleWeights(spec, weights);
  const params = spec.paramInputs.map((name) => ({ name, shape: spec.paramShapes[name]! }));
  return { engine: new TrainEngine(spec, map, o, run, params), weights: map, session };
}

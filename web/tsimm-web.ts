/**
 * tsimm in the browser. `createModel(name, { pretrained: true })` builds any zoo model in the page, fetches and
 * caches its weights from the hub and runs it in a worker the library starts (web/client.ts). Below that, the
 * building blocks: the same preprocessing kernels as Node (PIL / OpenCV reproduced bit for bit), and
 * onnxruntime-web sessions (wasm, or WebGPU where the browser has it) on ONNX files exported elsewhere.
 */
import * as ort from 'onnxruntime-web';
import { fromRgba, normalize, resolvePreprocess, transformImage, type PreprocessConfig } from '../src/data/transforms.js';
import { softmax, topk as topIndices } from '../src/math.js';
import type { PretrainedCfg } from '../src/models/types.js';

export { fromRgba, normalize, resolvePreprocess, transformImage };
export type { PreprocessConfig, PretrainedCfg };
export { createModel, preprocessImage, startWorker, WebModel, WebTrainer, type ImageInput, type WebCreateOptions } from './client.js';
export { cacheInfo, clearCache, weightUrls, type CacheEntry, type Progress } from './hub.js';
export { TsimmError, type ErrorCode } from './errors.js';
export type { ModelInfo, Prediction } from './protocol.js';
export { listModels, closestNames } from '../src/models/index.js';
export { describeModel, type ModelDescription } from './describe.js';
export { loadTrainer, TrainEngine, TrainError, type BundleSpec, type EngineOptions, type StepResult, type Targets, type WebTrainerOptions } from './train.js';

/** RGBA pixels → the normalized float32 [3, H, W] tensor the model expects. */
export function preprocessRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, config: PreprocessConfig): Float32Array {
  return normalize(transformImage(fromRgba(rgba, width, height), config), config);
}

export interface SessionOptions {
  /** 'wasm' (default) or 'webgpu'. */
  executionProviders?: string[];
  /** wasm threads (needs a cross-origin isolated page for more than one). */
  threads?: number;
  /** Where ort's .wasm/.mjs files are served (default: next to the ort module). */
  wasmPaths?: string;
}

export async function createSession(model: string | Uint8Array, o: SessionOptions = {}): Promise<ort.InferenceSession> {
  if (o.threads !== undefined) ort.env.wasm.numThreads = o.threads;
  if (o.wasmPaths) ort.env.wasm.wasmPaths = o.wasmPaths;
  const opts: ort.InferenceSession.SessionOptions = { executionProviders: o.executionProviders ?? ['wasm'], graphOptimizationLevel: 'all' };
  return typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
}

export async function run(session: ort.InferenceSession, input: Float32Array, shape: number[], output = 'logits'): Promise<Float32Array> {
  const result = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, shape) }, [output]);
  return result[output]!.data as Float32Array;
}

/**
 * What this browser's WebGPU offers: an adapter at all, and `shader-f16` (float16 arithmetic). Where it has
 * shader-f16, a model exported with `tsimm export --fp16` (a float16 graph, float32 in and out — the same graph
 * `--precision fp16` runs in Node) runs on WebGPU at half the weight size; elsewhere use the float32 export.
 */
export async function webgpuSupport(): Promise<{ adapter: boolean; shaderF16: boolean }> {
  const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<{ features: Set<string> } | null> } } | undefined)?.gpu;
  if (!gpu) return { adapter: false, shaderF16: false };
  const adapter = await gpu.requestAdapter().catch(() => null);
  return { adapter: !!adapter, shaderF16: !!adapter?.features.has('shader-f16') };
}

/** The precision and execution providers to run with here: fp16 on WebGPU with shader-f16, else fp32 (WebGPU, else wasm). */
export async function pickBackend(available: ('fp32' | 'fp16')[] = ['fp32', 'fp16']): Promise<{ precision: 'fp32' | 'fp16'; executionProviders: string[] }> {
  const s = await webgpuSupport();
  const precision = s.shaderF16 && available.includes('fp16') ? 'fp16' : available.includes('fp32') ? 'fp32' : available[0]!;
  return { precision, executionProviders: s.adapter ? ['webgpu', 'wasm'] : ['wasm'] };
}

/** The k most likely classes with their softmax probabilities. */
export function topk(logits: Float32Array, k = 5): { index: number; prob: number }[] {
  const probs = softmax(logits);
  return topIndices(probs, k).map((index) => ({ index, prob: probs[index]! }));
}

/**
 * Child process of test/gpu.test.ts: the Vulkan loader and driver are picked when the process starts
 * (LD_LIBRARY_PATH, VK_ICD_FILENAMES), so the parent sets them and runs this. Prints one JSON line:
 * per model, the WebGPU-vs-CPU errors of the logits on one random batch; then the fp16 graph on webgpu.
 *
 *   node --import tsx test/helpers/webgpu-child.ts '{"models":["resnet18"],"size":32,"batch":2,"fp16":"resnet18"}'
 */
import { pathToFileURL } from 'node:url';
import { createModel } from '../../src/model.js';
import { compareLogits, uniformInput } from '../../src/math.js';
import { createSession, runSession } from '../../src/runtime/session.js';
import type { HostTensor } from '../../src/weights/tensor.js';

interface Config {
  models: string[];
  size: number;
  batch: number;
  /** Also build this model's fp16 graph on webgpu (with allowCpuFallback when `fallback`). */
  fp16?: string;
  fallback?: boolean;
}

export interface ModelResult {
  model: string;
  /** max|webgpu − cpu| / max|cpu|: scale-free, as random weights give logits of any size. */
  rel: number;
  maxAbs: number;
  maxRef: number;
  top1Agree: number;
  ms: number;
}

export interface Fp16Result {
  model: string;
  error?: string;
  rel?: number;
  top1Agree?: number;
}

const randomInput = (shape: number[]): HostTensor => uniformInput(shape, 7);

export const compare = compareLogits;

async function logits(bytes: Uint8Array, x: HostTensor, device: 'cpu' | 'webgpu', allowCpuFallback = false): Promise<Float32Array> {
  const session = await createSession(bytes, { device, allowCpuFallback, threads: 1 });
  try {
    return (await runSession(session, x, ['logits']))['logits']!.data;
  } finally {
    await session.release();
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as Config;
  const results: ModelResult[] = [];
  for (const name of config.models) {
    const model = createModel(name, { inputSize: config.size }).initWeights();
    const bytes = model.toOnnx({ outputs: ['logits'] });
    const x = randomInput([config.batch, 3, config.size, config.size]);
    const ref = await logits(bytes, x, 'cpu');
    const t = performance.now();
    const y = await logits(bytes, x, 'webgpu');
    results.push({ model: name, ...compare(ref, y, config.batch), ms: Math.round(performance.now() - t) });
  }
  let fp16: Fp16Result | undefined;
  if (config.fp16) {
    const model = createModel(config.fp16, { inputSize: config.size }).initWeights();
    const x = randomInput([config.batch, 3, config.size, config.size]);
    const ref = await logits(model.toOnnx({ outputs: ['logits'] }), x, 'cpu');
    const half = model.toOnnx({ outputs: ['logits'], float16: true });
    try {
      const y = await logits(half, x, 'webgpu', config.fallback);
      if (config.fallback) await logits(half, x, 'webgpu', true); // a second fallback: the warning is printed once
      const c = compare(ref, y, config.batch);
      fp16 = { model: config.fp16, rel: c.rel, top1Agree: c.top1Agree };
    } catch (e) {
      fp16 = { model: config.fp16, error: `${(e as Error).name}: ${(e as Error).message}` };
    }
  }
  process.stdout.write(`${JSON.stringify({ results, fp16 })}\n`);
}

// The test imports compare() from here; only the child process runs main.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();

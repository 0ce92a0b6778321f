/**
 * tsimm/web's worker: everything heavy happens here, off the page's main thread. It builds a model's graph from
 * the registry, fetches and caches its weights, emits the ONNX graph and runs it with onnxruntime-web (WebGPU
 * where the browser has an adapter, else wasm), and decodes and preprocesses images exactly as Node does.
 * Requests and answers are plain messages (web/protocol.ts); big buffers travel as transferables.
 */
import type * as Ort from 'onnxruntime-web';
import { applyOrientation, exifOrientation, withoutOrientation } from '../src/data/exif.js';
import type { RgbImage } from '../src/data/resize.js';
import { fromRgba, normalize, transformImage } from '../src/data/transforms.js';
import { softmax, topk } from '../src/math.js';
import { buildOnnx, concatChunks } from '../src/onnx/export.js';
import { decodeCheckpoint, mapCheckpointFor } from '../src/weights/checkpoint.js';
import { bytesSource } from '../src/weights/source.js';
import { TsimmError, toWire } from './errors.js';
import { fetchFile, forgetFile, weightUrls } from './hub.js';
import { imagenetLabels } from './labels.js';
import { buildModel, fitBuiltCheckpoint, headWidth } from './core-model.js';
import type { CreateRequest, ImagePayload, ModelInfo, Request } from './protocol.js';
import { webTrainer, type LoadedModel, type WebTrainerHandle } from './train-worker.js';

let ort: typeof Ort | undefined;

interface Loaded extends LoadedModel {
  session: Ort.InferenceSession;
}

const models = new Map<number, Loaded>();
const trainers = new Map<number, WebTrainerHandle>();
let nextHandle = 1;

const post = (msg: unknown, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(msg, transfer);

function needOrt(): typeof Ort {
  if (!ort) throw new TsimmError('WORKER', 'the worker was not initialised (onnxruntime-web not loaded)');
  return ort;
}

async function init(a: { ortUrl: string; wasmPaths?: string; threads?: number }): Promise<{ isolated: boolean; threads: number; notes: string[] }> {
  ort = (await import(/* @vite-ignore */ a.ortUrl)) as typeof Ort;
  const isolated = self.crossOriginIsolated === true;
  const notes: string[] = [];
  // wasm threads need SharedArrayBuffer, which only a cross-origin isolated page has.
  const threads = isolated ? (a.threads ?? Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  if (!isolated) notes.push('the page is not cross-origin isolated (COOP/COEP headers), so wasm runs on one thread');
  ort.env.wasm.numThreads = threads;
  if (a.wasmPaths) ort.env.wasm.wasmPaths = a.wasmPaths;
  return { isolated, threads, notes };
}

async function gpuSupport(): Promise<{ adapter: boolean; shaderF16: boolean }> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<{ features: Set<string> } | null> } }).gpu;
  if (!gpu) return { adapter: false, shaderF16: false };
  const adapter = await gpu.requestAdapter().catch(() => null);
  return { adapter: !!adapter, shaderF16: !!adapter?.features.has('shader-f16') };
}

async function create(a: CreateRequest, id: number): Promise<ModelInfo> {
  const o = needOrt();
  const notes: string[] = [];
  let built = buildModel(a.name, { numClasses: a.numClasses, inputSize: a.inputSize });
  let config: Record<string, unknown> | undefined;
  const onProgress = (p: { file: string; loaded: number; total?: number }) => post({ id, progress: p });
  if (a.weights) {
    const ck = readCheckpoint(a.weights, a.weightsName ?? 'weights');
    // As Node's createModel(name, { weights }): a fine-tuned checkpoint's classifier sets the class count.
    const width = a.numClasses === undefined ? headWidth(built, ck) : undefined;
    if (width !== undefined && width !== built.numClasses) built = buildModel(a.name, { numClasses: width, inputSize: a.inputSize });
    built.weights = fitBuiltCheckpoint(built, ck, a.weightsName ?? 'weights');
  } else if (a.pretrained) {
    const source = built.cfg.weights;
    if (!source) throw new TsimmError('NO_WEIGHTS', `${built.entry.name}.${built.cfg.tag} has no pretrained weights (timm publishes none); pass your own with { weights: File | ArrayBuffer }`);
    const urls = weightUrls(source, a.hubUrl);
    if (urls.config) {
      try {
        config = JSON.parse(new TextDecoder().decode(await fetchFile(urls.config, { onProgress, offline: a.offline }))) as Record<string, unknown>;
      } catch (e) {
        if (!(e instanceof TsimmError && e.code === 'NOT_FOUND')) throw e;
        notes.push(`${urls.config} is absent; using the registry's config`);
      }
    }
    const bytes = await fetchFile(urls.weights, { onProgress, offline: a.offline });
    try {
      built.weights = fitBuiltCheckpoint(built, readCheckpoint(bytes, urls.weights, urls.scheme), urls.weights);
    } catch (e) {
      await forgetFile(urls.weights); // verified as sent, but not a checkpoint of this model: keep none of it
      throw e;
    }
  } else {
    built.initRandom(a.seed ?? 0, a.init);
    notes.push('random weights (pass pretrained: true or weights)');
  }
  // Where to run: WebGPU where there is an adapter (fp16 with shader-f16), else wasm.
  const want = a.device ?? 'auto';
  const gpu = want === 'wasm' ? { adapter: false, shaderF16: false } : await gpuSupport();
  if (want === 'webgpu' && !gpu.adapter) notes.push('no WebGPU adapter in this browser: running on wasm');
  let device: 'webgpu' | 'wasm' = gpu.adapter ? 'webgpu' : 'wasm';
  let precision: 'fp32' | 'fp16' = device === 'webgpu' && gpu.shaderF16 && a.precision !== 'fp32' ? 'fp16' : 'fp32';
  const onnxFor = (p: 'fp32' | 'fp16') => {
    const m = buildOnnx(built.graph, built.weights!, { float16: p === 'fp16', metadata: built.metadata() });
    return concatChunks(m.chunks, m.byteLength);
  };
  let session: Ort.InferenceSession;
  try {
    session = await o.InferenceSession.create(onnxFor(precision), { executionProviders: device === 'webgpu' ? ['webgpu'] : ['wasm'], graphOptimizationLevel: 'all' });
  } catch (e) {
    if (device === 'wasm') throw e;
    notes.push(`WebGPU session failed (${(e as Error).message.split('\n')[0]}): running on wasm`);
    device = 'wasm';
    precision = 'fp32';
    session = await o.InferenceSession.create(onnxFor('fp32'), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  }
  const names = Array.isArray(config?.['label_names']) ? (config!['label_names'] as string[]) : undefined;
  if (a.classNames && a.classNames.length !== built.numClasses) throw new TsimmError('BAD_INPUT', `${a.classNames.length} class names for ${built.numClasses} classes; give one name per class (numClasses)`);
  const labels = a.classNames ?? (names && names.length === built.numClasses ? names : built.numClasses === 1000 ? imagenetLabels() : Array.from({ length: built.numClasses }, (_, i) => `class ${i}`));
  const handle = nextHandle++;
  const info: ModelInfo = {
    handle,
    name: built.entry.name,
    tag: built.cfg.tag,
    cfg: built.cfg,
    numClasses: built.numClasses,
    inputSize: built.inputSize,
    preprocess: built.preprocess,
    device,
    precision,
    params: built.paramCount(),
    notes,
  };
  models.set(handle, { m: built, session, labels, info });
  return info;
}

function readCheckpoint(bytes: Uint8Array | ArrayBuffer, name: string, scheme?: Parameters<typeof mapCheckpointFor>[2]) {
  try {
    return { ...decodeCheckpoint(bytesSource(bytes, name)), scheme };
  } catch (e) {
    throw new TsimmError('BAD_CHECKPOINT', `${(e as Error).message}`);
  }
}

function get(handle: number): Loaded {
  const m = models.get(handle);
  if (!m) throw new TsimmError('BAD_INPUT', 'this model was disposed; create it again');
  return m;
}

/** Decode to RGB exactly as the reference does: the browser's own EXIF rotation cannot apply (the tag is reset). */
async function decode(img: ImagePayload, exifRotate: boolean): Promise<RgbImage> {
  if (img.kind === 'pixels') return fromRgba(img.data, img.width, img.height);
  let bitmap: ImageBitmap;
  let orientation = 1;
  if (img.kind === 'bytes') {
    const bytes = new Uint8Array(img.bytes);
    if (bytes.byteLength === 0) throw new TsimmError('BAD_IMAGE', 'the image is empty (0 bytes): not an image');
    orientation = exifOrientation(bytes);
    try {
      bitmap = await createImageBitmap(new Blob([withoutOrientation(bytes) as Uint8Array<ArrayBuffer>], { type: img.type ?? '' }), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch (e) {
      throw new TsimmError('BAD_IMAGE', `the image could not be decoded (${(e as Error).message}); it may be truncated, or a format this browser cannot read — JPEG, PNG, WebP and GIF work everywhere`);
    }
  } else bitmap = img.bitmap;
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgb = fromRgba(ctx.getImageData(0, 0, canvas.width, canvas.height, { colorSpace: 'srgb' }).data, canvas.width, canvas.height);
  // PIL ignores EXIF orientation, OpenCV's imread applies it: as the config's reference does.
  return exifRotate ? applyOrientation(rgb, orientation) : rgb;
}

async function preprocess(l: Loaded, img: ImagePayload): Promise<Float32Array> {
  const p = l.m.preprocess;
  return normalize(transformImage(await decode(img, p.exifRotate), p), p);
}

async function runSession(m: Loaded, data: Float32Array, shape: number[]): Promise<{ logits: Float32Array; features: Float32Array }> {
  const o = needOrt();
  const [c, h, w] = [3, ...m.m.inputSize];
  if (shape.length !== 4 || shape[1] !== c || shape[2] !== h || shape[3] !== w || data.length !== shape.reduce((x, y) => x * y, 1)) {
    throw new TsimmError('BAD_INPUT', `${m.info.name} expects float32 data of shape [N, ${c}, ${h}, ${w}], got [${shape.join(', ')}] with ${data.length} values; resize the input or create the model with that inputSize`);
  }
  if (m.dirty) {
    // Trained since the session was made: a fresh session on the current weights (same device and precision).
    const o2 = buildOnnx(m.m.graph, m.m.weights!, { float16: m.info.precision === 'fp16', metadata: m.m.metadata() });
    await m.session.release();
    m.session = await o.InferenceSession.create(concatChunks(o2.chunks, o2.byteLength), { executionProviders: [m.info.device], graphOptimizationLevel: 'all' });
    m.dirty = false;
  }
  const out = await m.session.run({ [m.session.inputNames[0]!]: new o.Tensor('float32', data, shape) });
  return { logits: out['logits']!.data as Float32Array, features: out['features']!.data as Float32Array };
}

async function handle(req: Request): Promise<{ result: unknown; transfer?: Transferable[] }> {
  switch (req.op) {
    case 'init':
      return { result: await init(req.args) };
    case 'create':
      return { result: await create(req.args, req.id) };
    case 'preprocess': {
      const x = await preprocess(get(req.args.handle), req.args.image);
      return { result: x, transfer: [x.buffer] };
    }
    case 'preprocessWith': {
      const c = req.args.config;
      const pixels = transformImage(await decode(req.args.image, c.exifRotate), c);
      const tensor = normalize(pixels, c);
      return { result: { pixels: pixels.data, width: pixels.width, height: pixels.height, tensor }, transfer: [pixels.data.buffer, tensor.buffer] };
    }
    case 'classify': {
      const m = get(req.args.handle);
      const x = await preprocess(m, req.args.image);
      const { logits } = await runSession(m, x, [1, 3, ...m.m.inputSize]);
      const probs = softmax(logits);
      return { result: topk(probs, Math.min(req.args.topk, probs.length)).map((index) => ({ index, label: m.labels[index]!, prob: probs[index]! })) };
    }
    case 'features': {
      const m = get(req.args.handle);
      const { features } = await runSession(m, await preprocess(m, req.args.image), [1, 3, ...m.m.inputSize]);
      return { result: features, transfer: [features.buffer] };
    }
    case 'run': {
      const r = await runSession(get(req.args.handle), req.args.data, req.args.shape);
      return { result: r, transfer: [r.logits.buffer, r.features.buffer] };
    }
    case 'dispose': {
      const m = models.get(req.args.handle);
      models.delete(req.args.handle);
      await m?.session.release();
      return { result: true };
    }
    default:
      return webTrainer(req, { get, needOrt, decode, trainers });
  }
}

self.onmessage = async (ev: MessageEvent<Request>) => {
  const req = ev.data;
  try {
    const { result, transfer } = await handle(req);
    post({ id: req.id, ok: true, result }, transfer ?? []);
  } catch (e) {
    post({ id: req.id, ok: false, error: toWire(e) });
  }
};

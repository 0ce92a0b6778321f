/**
 * `createModel` in the page. The library starts its own dedicated worker (web/worker.ts, built next to this file
 * as tsimm-worker.js) and talks to it with messages; the main thread only converts images to something
 * transferable and waits, so the page stays responsive while a model downloads, builds, runs or trains.
 */
import { fromWire, TsimmError, type WireError } from './errors.js';
import type { Progress } from './hub.js';
import type { PreprocessConfig } from '../src/data/transforms.js';
import type { CreateRequest, ImagePayload, ModelInfo, Prediction, Request } from './protocol.js';

export type ImageInput = File | Blob | ArrayBuffer | Uint8Array | ImageBitmap | HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageData | VideoFrame;

export interface WebCreateOptions {
  /** Download (or take from the cache) the registry's pretrained weights. */
  pretrained?: boolean;
  /** A checkpoint of your own (safetensors, .pth, .pdparams) instead of the registry's. */
  weights?: File | Blob | ArrayBuffer | Uint8Array;
  /** Hub mirror (default https://huggingface.co): files at {hubUrl}/timm/<arch>.<tag>/resolve/main/. */
  hubUrl?: string;
  /** 'auto' (default: WebGPU where there is an adapter, else wasm), 'webgpu' or 'wasm'. */
  device?: 'auto' | 'webgpu' | 'wasm';
  /** fp16 is used on WebGPU with shader-f16 unless this says 'fp32'. */
  precision?: 'fp32' | 'fp16';
  onProgress?: (p: Progress) => void;
  numClasses?: number;
  inputSize?: number | [number, number];
  /** Never touch the network (the files must be cached). */
  offline?: boolean;
  /** Seed of the random weights when neither pretrained nor weights is given. */
  seed?: number;
  /**
   * Those random weights: 'uniform' (default; Node's `initWeights`, the same numbers for the same seed) or 'timm'
   * (the family's timm initialisation, what `tsimm train` starts from without --pretrained: use it to train from scratch).
   */
  init?: 'uniform' | 'timm';
  /** Names of the classes (one per class): what classify returns and config.json records. */
  classNames?: string[];
  /** Where onnxruntime-web's ESM file is (default: what the page's import map or bundler resolves). */
  ortUrl?: string;
  /** Where onnxruntime-web's .wasm files are (default: next to its ESM file). */
  wasmPaths?: string;
  /** Where tsimm-worker.js is (default: next to this module). */
  workerUrl?: string | URL;
  /** wasm threads (default min(4, cores) when the page is cross-origin isolated, else 1). */
  threads?: number;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  onProgress?: (p: Progress) => void;
}

/** One worker, its pending requests, and the notes it gave at start. */
export class WorkerClient {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  notes: string[] = [];
  isolated = false;
  threads = 1;

  constructor(readonly worker: Worker) {
    worker.onmessage = (ev: MessageEvent<{ id: number; ok?: boolean; result?: unknown; error?: WireError; progress?: Progress }>) => {
      const m = ev.data;
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.progress) return p.onProgress?.(m.progress);
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(fromWire(m.error!));
    };
    worker.onerror = (ev) => {
      const err = new TsimmError('WORKER', `tsimm's worker failed to start or crashed (${ev.message || 'no message'}); check that tsimm-worker.js is served next to tsimm-web.js, or pass workerUrl`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
  }

  call<T>(op: Request['op'], args: unknown, transfer: Transferable[] = [], onProgress?: (p: Progress) => void): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onProgress });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  terminate(): void {
    this.worker.terminate();
  }
}

let shared: Promise<WorkerClient> | undefined;

function ortUrlDefault(): string {
  try {
    return import.meta.resolve('onnxruntime-web');
  } catch {
    throw new TsimmError('WORKER', 'cannot find onnxruntime-web: map it in the page\'s import map ("onnxruntime-web": ".../ort.webgpu.min.mjs") or pass ortUrl');
  }
}

/** The library's worker (one per page unless `workerUrl`/`ortUrl` differ on first use), started on first need. */
export function startWorker(o: Pick<WebCreateOptions, 'ortUrl' | 'wasmPaths' | 'workerUrl' | 'threads'> = {}): Promise<WorkerClient> {
  if (!shared) {
    shared = (async () => {
      const url = o.workerUrl ?? new URL('./tsimm-worker.js', import.meta.url);
      const client = new WorkerClient(new Worker(url, { type: 'module', name: 'tsimm' }));
      const ortUrl = o.ortUrl ?? ortUrlDefault();
      const r = await client.call<{ isolated: boolean; threads: number; notes: string[] }>('init', { ortUrl, wasmPaths: o.wasmPaths, threads: o.threads });
      Object.assign(client, r);
      return client;
    })();
    shared.catch(() => (shared = undefined));
  }
  return shared;
}

const isType = (v: unknown, name: string): boolean => typeof (globalThis as Record<string, unknown>)[name] === 'function' && v instanceof ((globalThis as Record<string, unknown>)[name] as new () => unknown);

/**
 * An image as the worker takes it. Encoded bytes (File, Blob, ArrayBuffer, an <img>'s own file) are decoded in
 * the worker with the EXIF orientation neutralised, so the browser cannot rotate it; pixels already decoded by the
 * browser (canvas, ImageBitmap, VideoFrame, ImageData) are taken as they are.
 */
export async function toPayload(img: ImageInput): Promise<{ payload: ImagePayload; transfer: Transferable[] }> {
  if (img instanceof Blob) {
    const bytes = await img.arrayBuffer();
    return { payload: { kind: 'bytes', bytes, type: img.type }, transfer: [bytes] };
  }
  if (img instanceof ArrayBuffer) {
    const bytes = img.slice(0);
    return { payload: { kind: 'bytes', bytes }, transfer: [bytes] };
  }
  if (img instanceof Uint8Array) {
    const bytes = img.slice().buffer;
    return { payload: { kind: 'bytes', bytes }, transfer: [bytes] };
  }
  if (isType(img, 'ImageData')) {
    const d = img as ImageData;
    const data = new Uint8ClampedArray(d.data);
    return { payload: { kind: 'pixels', data, width: d.width, height: d.height }, transfer: [data.buffer] };
  }
  if (isType(img, 'HTMLImageElement')) {
    const el = img as HTMLImageElement;
    if (!el.complete) await el.decode();
    // The element's own file, decoded again in the worker: the element itself is already EXIF-rotated.
    const src = el.currentSrc || el.src;
    try {
      const res = await fetch(src);
      if (res.ok) {
        const bytes = await res.arrayBuffer();
        return { payload: { kind: 'bytes', bytes, type: res.headers.get('content-type') ?? '' }, transfer: [bytes] };
      }
    } catch {
      /* a cross-origin image without CORS: fall back to its pixels */
    }
  }
  try {
    const bitmap = await createImageBitmap(img as ImageBitmapSource, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    return { payload: { kind: 'bitmap', bitmap }, transfer: [bitmap] };
  } catch (e) {
    throw new TsimmError('BAD_IMAGE', `this image cannot be read (${(e as Error).message}); pass a File, Blob, ImageBitmap, <img>, <canvas>, ImageData or VideoFrame`);
  }
}

/**
 * One image through a preprocessing config (resolvePreprocess's output: a model's own, or overridden), in the
 * worker: the resized and cropped uint8 HWC pixels and the normalized [3, H, W] tensor, as Node computes them.
 */
export async function preprocessImage(image: ImageInput, config: PreprocessConfig, o: Pick<WebCreateOptions, 'ortUrl' | 'wasmPaths' | 'workerUrl' | 'threads'> = {}): Promise<{ pixels: Uint8Array; width: number; height: number; tensor: Float32Array }> {
  const client = await startWorker(o);
  const { payload, transfer } = await toPayload(image);
  return client.call('preprocessWith', { config, image: payload }, transfer);
}

export class WebModel {
  constructor(
    readonly client: WorkerClient,
    readonly info: ModelInfo,
  ) {}

  get name(): string {
    return this.info.name;
  }
  get device(): 'webgpu' | 'wasm' {
    return this.info.device;
  }
  /** Why the model runs where it does (no WebGPU, no threads, ...). */
  get notes(): string[] {
    return [...this.client.notes, ...this.info.notes];
  }

  /** The k most likely classes with labels and softmax probabilities. */
  async classify(image: ImageInput, o: { topk?: number } = {}): Promise<Prediction[]> {
    const { payload, transfer } = await toPayload(image);
    return this.client.call('classify', { handle: this.info.handle, image: payload, topk: o.topk ?? 5 }, transfer);
  }

  /** Pooled pre-logits features of one image. */
  async features(image: ImageInput): Promise<Float32Array> {
    const { payload, transfer } = await toPayload(image);
    return this.client.call('features', { handle: this.info.handle, image: payload }, transfer);
  }

  /** The model's input tensor for one image ([3, H, W], the reference's preprocessing bit for bit). */
  async preprocess(image: ImageInput): Promise<Float32Array> {
    const { payload, transfer } = await toPayload(image);
    return this.client.call('preprocess', { handle: this.info.handle, image: payload }, transfer);
  }

  /** Run a float32 NCHW batch, as model.run in Node. The data is copied (the caller keeps its array). */
  async run(input: { data: Float32Array; shape: number[] }): Promise<{ logits: Float32Array; features: Float32Array }> {
    const data = input.data.slice();
    return this.client.call('run', { handle: this.info.handle, data, shape: input.shape }, [data.buffer]);
  }

  /**
   * A batch for training or evaluation, preprocessed in the worker: with `train`, timm's train transform (random
   * resized crop, flip, RandAugment or colour jitter, erasing; options as Node's `trainTransform`) with each
   * sample's randomness drawn from (seed, epoch, offset + index); without, the model's eval preprocessing.
   */
  async preprocessBatch(images: ImageInput[], o: { train?: boolean; seed?: number; epoch?: number; offset?: number; augment?: Record<string, unknown> } = {}): Promise<{ data: Float32Array; shape: number[] }> {
    const payloads = await Promise.all(images.map(toPayload));
    return this.client.call(
      'trainPreprocess',
      { handle: this.info.handle, images: payloads.map((p) => p.payload), train: o.train ?? false, seed: o.seed, epoch: o.epoch, offset: o.offset, augment: o.augment },
      payloads.flatMap((p) => p.transfer),
    );
  }

  /**
   * A trainer on this model's weights (in the worker), with Node's options: optimizer ('sgd' | 'adamw'), lr,
   * weightDecay, freeze / trainOnly module prefixes, batchNorm, labelSmoothing, clipGrad, accumulate. After
   * steps, classify/run/features use the trained weights.
   */
  async trainer(options: Record<string, unknown> = {}): Promise<WebTrainer> {
    const r = await this.client.call<{ trainer: number; trainable: number }>('trainer', { handle: this.info.handle, options });
    return new WebTrainer(this.client, r.trainer, r.trainable);
  }

  /** The weights as timm-keyed float32 safetensors (loads in `tsimm predict --weights` and in timm). */
  saveSafetensors(): Promise<Uint8Array> {
    return this.client.call('save', { handle: this.info.handle, what: 'safetensors' });
  }

  /** config.json for those weights: architecture, classes and preprocessing (tsimm's and timm's fields). */
  saveConfig(): Promise<string> {
    return this.client.call('save', { handle: this.info.handle, what: 'config' });
  }

  /** The model as an ONNX file (logits and features outputs). */
  saveOnnx(): Promise<Uint8Array> {
    return this.client.call('save', { handle: this.info.handle, what: 'onnx' });
  }

  async dispose(): Promise<void> {
    await this.client.call('dispose', { handle: this.info.handle });
  }
}

export class WebTrainer {
  constructor(
    readonly client: WorkerClient,
    readonly id: number,
    /** How many parameter tensors train (the rest are frozen). */
    readonly trainable: number,
  ) {}

  /**
   * One optimizer step on a preprocessed batch and its class indices. The batch's data is transferred. `lr` sets
   * the learning rate from this step on (a schedule: call with each step's value).
   */
  step(batch: { data: Float32Array; shape: number[] }, labels: ArrayLike<number>, o: { lr?: number } = {}): Promise<{ loss: number; lr: number; updated: boolean; logits: Float32Array }> {
    return this.client.call('trainStep', { trainer: this.id, data: batch.data, shape: batch.shape, labels: Array.from(labels), lr: o.lr }, [batch.data.buffer]);
  }
}

/**
 * A zoo model by name (`resnet50d`, `resnet50d.ra2_in1k`, `ResNet50_vd`), built in the page and run in the
 * library's worker: with `pretrained`, timm's own safetensors (or the registry's PaddleClas file) are fetched
 * from the hub, verified and cached, so the next load is offline.
 */
export async function createModel(name: string, o: WebCreateOptions = {}): Promise<WebModel> {
  const client = await startWorker(o);
  let weights: ArrayBuffer | undefined;
  let weightsName: string | undefined;
  if (o.weights) {
    weightsName = o.weights instanceof File ? o.weights.name : 'weights';
    weights = o.weights instanceof Blob ? await o.weights.arrayBuffer() : o.weights instanceof Uint8Array ? o.weights.slice().buffer : o.weights.slice(0);
  }
  const req: CreateRequest = {
    name,
    pretrained: o.pretrained,
    hubUrl: o.hubUrl,
    numClasses: o.numClasses,
    inputSize: o.inputSize,
    device: o.device,
    precision: o.precision,
    weights,
    weightsName,
    offline: o.offline,
    seed: o.seed,
    init: o.init,
    classNames: o.classNames,
  };
  const info = await client.call<ModelInfo>('create', req, weights ? [weights] : [], o.onProgress);
  return new WebModel(client, info);
}

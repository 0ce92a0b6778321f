/**
 * Fine-tuning in the worker, with Node's engine: the training graph is built here from the model's IR
 * (src/train/plan.ts, the same options and freeze rules as Node's `model.trainer`), run by onnxruntime-web, and
 * stepped by src/train/engine.ts (optimizers, schedules, accumulation, clipping, running statistics) on the
 * model's own weights. Batches come from timm's train transform (src/data/augment.ts) with per-sample seeded
 * randomness. The result saves as timm-keyed safetensors plus config.json, or as ONNX.
 */
import type * as Ort from 'onnxruntime-web';
import { deriveRng, trainTransform, type TrainTransformOptions } from '../src/data/augment.js';
import type { RgbImage } from '../src/data/resize.js';
import { normalize, transformImage } from '../src/data/transforms.js';
import { buildOnnx, concatChunks } from '../src/onnx/export.js';
import { ortRun, TrainEngine, type EngineOptions } from '../src/train/engine.js';
import { trainGraphFor, type TrainerOptions } from '../src/train/plan.js';
import { encodeSafetensors } from '../src/weights/safetensors.js';
import type { BuiltModel } from './core-model.js';
import { TsimmError } from './errors.js';
import type { ImagePayload, ModelInfo, Request } from './protocol.js';

export interface LoadedModel {
  m: BuiltModel;
  info: ModelInfo;
  labels: string[];
  /** The weights changed since the inference session was made (it is rebuilt before the next run). */
  dirty?: boolean;
}

export interface WebTrainerHandle {
  engine: TrainEngine;
  session: Ort.InferenceSession;
  model: LoadedModel;
}

export interface WorkerContext {
  get(handle: number): LoadedModel;
  needOrt(): typeof Ort;
  decode(img: ImagePayload, exifRotate: boolean): Promise<RgbImage>;
  trainers: Map<number, WebTrainerHandle>;
}

let nextTrainer = 1;

/** Options a page may pass (functions cannot cross postMessage; everything in TrainerOptions is data). */
export type WebTrainerOptions = Omit<TrainerOptions, 'threads' | 'optimization'>;

const concat = (chunks: Uint8Array[]) => concatChunks(chunks, chunks.reduce((a, c) => a + c.byteLength, 0));

export async function webTrainer(req: Request, ctx: WorkerContext): Promise<{ result: unknown; transfer?: Transferable[] }> {
  switch (req.op) {
    case 'trainer': {
      const ort = ctx.needOrt();
      const model = ctx.get(req.args.handle);
      const o = req.args.options as WebTrainerOptions;
      if (!model.m.weights) throw new TsimmError('NO_WEIGHTS', `${model.info.name} has no weights to train`);
      let tg;
      try {
        tg = trainGraphFor(model.m.graph, model.m.weights, o);
      } catch (e) {
        throw new TsimmError('BAD_INPUT', (e as Error).message);
      }
      // No memory pattern: with a symbolic batch it doubles the peak (see src/train/trainer.ts).
      const session = await ort.InferenceSession.create(tg.bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all', enableMemPattern: false });
      const run = ortRun(async () => session, (data, dims) => new ort.Tensor('float32', data, dims));
      const engine = new TrainEngine(tg, model.m.weights, o as EngineOptions, run, model.m.graph.paramList());
      const id = nextTrainer++;
      ctx.trainers.set(id, { engine, session, model });
      return { result: { trainer: id, trainable: tg.paramInputs.length } };
    }
    case 'trainStep': {
      const t = ctx.trainers.get(req.args.trainer);
      if (!t) throw new TsimmError('BAD_INPUT', 'this trainer was released; create another with model.trainer()');
      const [n, c, h, w] = req.args.shape;
      const [eh, ew] = t.model.m.inputSize;
      if (req.args.shape.length !== 4 || c !== 3 || h !== eh || w !== ew || req.args.labels.length !== n) {
        throw new TsimmError('BAD_INPUT', `a training batch is [N, 3, ${eh}, ${ew}] with N labels; got [${req.args.shape.join(', ')}] and ${req.args.labels.length} labels (use model.preprocessBatch)`);
      }
      const bad = req.args.labels.find((l) => !Number.isInteger(l) || l < 0 || l >= t.model.m.numClasses);
      if (bad !== undefined) throw new TsimmError('BAD_INPUT', `label ${bad} is not a class index in 0..${t.model.m.numClasses - 1}`);
      if (req.args.lr !== undefined) {
        if (!(req.args.lr >= 0 && Number.isFinite(req.args.lr))) throw new TsimmError('BAD_INPUT', `lr must be a finite number ≥ 0, got ${req.args.lr}`);
        t.engine.lr = req.args.lr; // the page's schedule (warmup, cosine): kept for the following steps
      }
      const r = await t.engine.step({ data: req.args.data, dims: req.args.shape }, req.args.labels);
      t.model.dirty = true;
      return { result: { loss: r.loss, lr: r.lr, updated: r.updated, logits: r.logits }, transfer: [r.logits.buffer] };
    }
    case 'trainPreprocess': {
      const model = ctx.get(req.args.handle);
      const p = model.m.preprocess;
      const [h, w] = model.m.inputSize;
      const out = new Float32Array(req.args.images.length * 3 * h * w);
      const seed = req.args.seed ?? 0;
      const t = req.args.train
        ? trainTransform({ inputSize: [3, h, w], interpolation: p.interpolation, mean: p.mean, std: p.std }, (req.args.augment ?? {}) as TrainTransformOptions)
        : undefined;
      for (let i = 0; i < req.args.images.length; i++) {
        const img = await ctx.decode(req.args.images[i]!, p.exifRotate);
        if (t) t(img, deriveRng(seed, req.args.epoch ?? 0, (req.args.offset ?? 0) + i), out, i * 3 * h * w);
        else normalize(transformImage(img, p), p, out, i * 3 * h * w);
      }
      return { result: { data: out, shape: [req.args.images.length, 3, h, w] }, transfer: [out.buffer] };
    }
    case 'save': {
      const model = ctx.get(req.args.handle);
      const m = model.m;
      if (req.args.what === 'safetensors') {
        const bytes = concat(encodeSafetensors(m.stateDict(), { format: 'pt' }));
        return { result: bytes, transfer: [bytes.buffer] };
      }
      if (req.args.what === 'onnx') {
        const o = buildOnnx(m.graph, m.weights!, { metadata: m.metadata() });
        const bytes = concat(o.chunks);
        return { result: bytes, transfer: [bytes.buffer] };
      }
      // What `tsimm predict/eval --weights` reads (src/train/run-config.ts) and what timm reads (architecture,
      // num_classes, label_names, pretrained_cfg).
      const p = m.preprocess;
      const config = {
        architecture: m.entry.name,
        num_classes: m.numClasses,
        label_names: model.labels,
        pretrained_cfg: { tag: m.cfg.tag, input_size: [3, ...m.inputSize], interpolation: p.interpolation, crop_pct: p.cropPct, crop_mode: p.cropMode, mean: p.mean, std: p.std, num_classes: m.numClasses },
        model: m.entry.name,
        in_chans: 3,
        input_size: [3, ...m.inputSize],
        class_names: model.labels,
        preprocess: p,
      };
      return { result: `${JSON.stringify(config, null, 2)}\n` };
    }
    default:
      throw new TsimmError('BAD_INPUT', `unknown request ${req.op}`);
  }
}

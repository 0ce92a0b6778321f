/**
 * The training loop behind `tsimm train` and `fit()`: epochs of steps on a batch source, timm's per-update LR
 * schedule, mixup/cutmix, EMA, knowledge distillation from a teacher running inference, evaluation each epoch
 * (top-1/top-5 and loss, for the model and its EMA), and a run directory that can be resumed exactly:
 *
 *   last.safetensors, best.safetensors   timm keys (EMA weights in ema.safetensors when on)
 *   config.json                          architecture, classes, preprocessing, recipe
 *   state.json + optimizer.safetensors   step, epoch, best, RNG, optimizer buffers
 *   log.jsonl, summary.csv               one record per epoch (timm's columns)
 *
 * Every write goes through a temporary file and a rename. Randomness (data order, augmentation, mixup) is a
 * function of (seed, epoch, index), so a resumed run draws what an uninterrupted one would.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { writeChunksAtomic } from '../node/files.js';
import { join } from 'node:path';
import { Accuracy } from '../math.js';
import type { Model } from '../model.js';
import { runSession, type Session, type SessionOptions } from '../runtime/session.js';
import { loadSafetensors, saveSafetensors } from '../node/safetensors.js';
import { InputError, type HostTensor } from '../weights/tensor.js';
import { Ema } from './ema.js';
import { TrainError } from './engine.js';
import { mixBatch, type MixupOptions } from './mixup.js';
import { deriveRng } from '../data/augment.js';
import { Rng } from '../util/rng.js';
import { lrAt, type ScheduleOptions } from './scheduler.js';
import type { TrainerOptions } from './trainer.js';

export interface Batch {
  x: HostTensor;
  targets: Int32Array;
}

/** A DataLoader (src/data/loader.ts) as a batch source; `skip` batches become its start position. */
export function loaderSource(loader: { batchesPerEpoch: number; epoch(e: number, o?: { start?: number }): AsyncIterable<{ shape: number[]; data: Float32Array; targets: Int32Array }> }, batchSize: number): BatchSource {
  return {
    batchesPerEpoch: loader.batchesPerEpoch,
    async *batches(epoch: number, skip = 0) {
      for await (const b of loader.epoch(epoch, { start: skip * batchSize })) yield { x: { shape: b.shape, data: b.data }, targets: b.targets };
    },
  };
}

/** Batches of one epoch, in an order fixed by (seed, epoch); `skip` batches are passed over (resume). */
export interface BatchSource {
  batchesPerEpoch: number;
  batches(epoch: number, skip?: number): AsyncIterable<Batch>;
}

export interface EpochRecord {
  epoch: number;
  train_loss: number;
  /** Distillation: the cross-entropy and KD parts of the loss (epoch means). */
  train_loss_ce?: number;
  train_loss_kd?: number;
  eval_loss?: number;
  eval_top1?: number;
  eval_top5?: number;
  ema_top1?: number;
  ema_top5?: number;
  lr: number;
  seconds: number;
  images_per_second: number;
}

export interface StepInfo {
  epoch: number;
  step: number;
  batch: number;
  batches: number;
  loss: number;
  lr: number;
  imagesPerSecond: number;
  /** Seconds since this epoch (or its resumed part) started, and batches run in that time. */
  elapsed: number;
  batchesDone: number;
}

export interface FitOptions {
  model: Model;
  train: BatchSource;
  val?: BatchSource;
  epochs: number;
  trainer?: TrainerOptions;
  schedule?: Omit<ScheduleOptions, 'lr' | 'total' | 'warmup'> & { warmupEpochs?: number };
  mixup?: Omit<MixupOptions, 'numClasses' | 'labelSmoothing'>;
  /** EMA decay (timm's model_ema_decay 0.9998); off when undefined. */
  ema?: number;
  /** A teacher (with weights) for `trainer.distill`: its logits on each batch are the distillation targets. */
  teacher?: Model;
  output?: string;
  /** Continue the run in `output` from its saved state. */
  resume?: boolean;
  /** Keep the last N epoch checkpoints (timm's checkpoint_hist). */
  checkpointHist?: number;
  seed?: number;
  /** Written to config.json so predict/eval print the user's classes with the training preprocessing. */
  config?: Record<string, unknown>;
  onStep?: (s: StepInfo) => void;
  onEpoch?: (r: EpochRecord) => void;
  /** Stop after the current step, save a resumable state, and return `{ interrupted: true }`. */
  signal?: AbortSignal;
}

export interface FitResult {
  epochs: EpochRecord[];
  best?: { epoch: number; metric: number };
  interrupted: boolean;
  steps: number;
}

interface RunState {
  epoch: number;
  /** Batches done in `epoch` (0 at an epoch boundary). */
  batch: number;
  step: number;
  updates: number;
  best?: { epoch: number; metric: number };
  optimizerStep: number;
  lossSum: number;
  lossCount: number;
  termSums?: Record<string, number>;
}

/** A failed write (full disk, permissions) as one line; the files already there are whole (atomic renames). */
function guardWrite(dir: string | undefined, f: () => void): void {
  try {
    f();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code) throw e;
    const why = code === 'ENOSPC' ? 'no space left on the device' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (e as Error).message;
    throw new InputError(`cannot save the run in ${dir}: ${why}; the previous checkpoint is intact — free space (or fix permissions) and continue with --resume`);
  }
}

const writeAtomic = (path: string, text: string): void => writeChunksAtomic(path, [new TextEncoder().encode(text)]);

/** Top-1/top-5 and mean cross-entropy of `weights` on the validation batches (inference graph, frozen BN). */
export async function evaluateWeights(model: Model, weights: Map<string, Float32Array>, val: BatchSource, epoch = 0, session_: SessionOptions = {}): Promise<{ loss: number; top1: number; top5: number; count: number }> {
  const saved = model.weights;
  model.weights = weights;
  let session: Session;
  try {
    session = await model.createSession({ ...session_, outputs: ['logits'] });
  } finally {
    model.weights = saved;
  }
  const acc = new Accuracy();
  let loss = 0;
  try {
    for await (const b of val.batches(epoch)) {
      const logits = (await runSession(session, b.x, ['logits']))['logits']!;
      const k = logits.shape[1]!;
      for (let i = 0; i < b.targets.length; i++) {
        const row = logits.data.subarray(i * k, (i + 1) * k);
        acc.add(row, b.targets[i]!);
        let m = -Infinity;
        for (const v of row) m = Math.max(m, v);
        let s = 0;
        for (const v of row) s += Math.exp(v - m);
        loss += Math.log(s) + m - row[b.targets[i]!]!;
      }
    }
  } finally {
    await session.release();
  }
  const n = acc.count;
  return { loss: n ? loss / n : NaN, top1: acc.top1, top5: acc.top5, count: n };
}

const SUMMARY_COLUMNS = ['epoch', 'train_loss', 'eval_loss', 'eval_top1', 'eval_top5', 'lr'] as const;

export async function fit(o: FitOptions): Promise<FitResult> {
  const { model } = o;
  if (!model.weights) throw new InputError(`${model.name} has no weights: load a checkpoint, use pretrained weights, or initialise them (timm's init) before training`);
  const seed = o.seed ?? 42;
  const topt: TrainerOptions = { ...(o.trainer ?? {}) };
  if (topt.distill && !o.teacher) throw new InputError('distillation needs a teacher model');
  const accumulate = topt.accumulate ?? 1;
  const updatesPerEpoch = Math.max(1, Math.floor(o.train.batchesPerEpoch / accumulate));
  const sched: ScheduleOptions = {
    ...(o.schedule ?? {}),
    lr: topt.lr ?? 0.01,
    total: o.epochs * updatesPerEpoch,
    warmup: Math.round((o.schedule?.warmupEpochs ?? 0) * updatesPerEpoch),
  };
  const dir = o.output;
  if (dir) mkdirSync(dir, { recursive: true });

  const trainer = model.trainer(topt);
  const ema = o.ema !== undefined ? new Ema(model.weights, o.ema) : undefined;
  let st: RunState = { epoch: 0, batch: 0, step: 0, updates: 0, optimizerStep: 0, lossSum: 0, lossCount: 0 };
  const records: EpochRecord[] = [];

  if (o.resume) {
    if (!dir || !existsSync(join(dir, 'state.json'))) throw new InputError(`nothing to resume in ${dir ?? '(no --output)'}: state.json is missing`);
    const saved = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { model: string; num_classes: number; in_chans?: number };
    if (saved.model !== model.name || saved.num_classes !== model.numClasses || (saved.in_chans ?? 3) !== model.inChans) {
      throw new InputError(`${dir} holds a run of ${saved.model} with ${saved.num_classes} classes, not ${model.name} with ${model.numClasses}; resume it with the same model and data, or give another --output`);
    }
    st = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as RunState;
    const w = loadSafetensors(join(dir, 'last.safetensors'));
    for (const [k, t] of w) model.weights.get(k)?.set(t.data);
    if (ema && existsSync(join(dir, 'ema.safetensors'))) for (const [k, t] of loadSafetensors(join(dir, 'ema.safetensors'))) ema.weights.get(k)?.set(t.data);
    const opt = existsSync(join(dir, 'optimizer.safetensors')) ? loadSafetensors(join(dir, 'optimizer.safetensors')) : new Map<string, HostTensor>();
    const buffers: Record<string, Float32Array[]> = {};
    for (const [k, t] of opt) {
      const [name, i] = [k.slice(0, k.lastIndexOf('#')), Number(k.slice(k.lastIndexOf('#') + 1))];
      (buffers[name] ??= [])[i] = t.data;
    }
    trainer.engine.optimizer.load({ kind: trainer.engine.optimizer.kind, step: st.optimizerStep, buffers });
    if (existsSync(join(dir, 'log.jsonl'))) {
      for (const line of readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter(Boolean)) records.push(JSON.parse(line) as EpochRecord);
    }
  }

  const save = (final: boolean) => guardWrite(dir, () => saveState(final));
  const saveState = (final: boolean) => {
    if (!dir) return;
    model.saveSafetensors(join(dir, 'last.safetensors'));
    if (ema) saveSafetensors(join(dir, 'ema.safetensors'), new Map([...ema.weights].map(([k, v]) => [k, { shape: model.fullGraph.params.get(k)!.shape, data: v }])), { format: 'pt' });
    const opt = new Map<string, HostTensor>();
    for (const [k, bufs] of trainer.engine.optimizer.buffers) bufs.forEach((b, i) => opt.set(`${k}#${i}`, { shape: [b.length], data: b }));
    saveSafetensors(join(dir, 'optimizer.safetensors'), opt);
    writeAtomic(join(dir, 'state.json'), `${JSON.stringify({ ...st, optimizerStep: trainer.engine.optimizer.step, final }, null, 2)}\n`);
  };
  if (dir) writeAtomic(join(dir, 'config.json'), `${JSON.stringify({ model: model.name, num_classes: model.numClasses, in_chans: model.inChans, input_size: [model.inChans, ...model.inputSize], ...(o.config ?? {}), recipe: { epochs: o.epochs, seed, trainer: { ...topt, distill: topt.distill }, schedule: sched, mixup: o.mixup, ema: o.ema } }, null, 2)}\n`);

  let teacherSession: Session | undefined;
  if (o.teacher) teacherSession = await o.teacher.createSession({ outputs: ['logits'] });
  let interrupted = false;
  try {
    for (let epoch = st.epoch; epoch < o.epochs && !interrupted; epoch++) {
      const t0 = performance.now();
      let images = 0;
      const skip = st.batch;
      if (!skip) {
        st.lossSum = 0;
        st.lossCount = 0;
        st.termSums = {};
      }
      let b = skip;
      for await (const batch of o.train.batches(epoch, skip)) {
        trainer.lr = lrAt(sched, st.updates);
        let targets: Int32Array | HostTensor = batch.targets;
        if (o.mixup && ((o.mixup.mixupAlpha ?? 0) > 0 || (o.mixup.cutmixAlpha ?? 0) > 0)) {
          const rng = new Rng(deriveRng(seed, epoch, b).getState());
          const m = mixBatch(batch.x.data, batch.x.shape, batch.targets, { ...o.mixup, numClasses: model.numClasses, labelSmoothing: topt.labelSmoothing ?? 0 }, rng);
          targets = { shape: [batch.targets.length, model.numClasses], data: m.targets };
        }
        const teacher = teacherSession ? (await runSession(teacherSession, batch.x, ['logits']))['logits'] : undefined;
        let r;
        try {
          r = await trainer.step(batch.x, targets, { ...(teacher ? { teacher } : {}), maskKeys: [seed, epoch, b] });
        } catch (e) {
          if (e instanceof TrainError && /the loss is/.test(e.message)) throw new TrainError(`epoch ${epoch}, ${e.message}`);
          throw e;
        }
        st.step++;
        b++;
        st.batch = b;
        if (r.updated) {
          st.updates++;
          ema?.update(model.weights);
        }
        st.lossSum += r.loss;
        st.lossCount++;
        for (const [k, t] of Object.entries(r.terms)) (st.termSums ??= {})[k] = (st.termSums[k] ?? 0) + t;
        images += batch.targets.length;
        const elapsed = (performance.now() - t0) / 1000;
        o.onStep?.({ epoch, step: st.step, batch: b, batches: o.train.batchesPerEpoch, loss: r.loss, lr: r.lr, imagesPerSecond: images / elapsed, elapsed, batchesDone: b - skip });
        if (o.signal?.aborted) {
          interrupted = true;
          break;
        }
      }
      if (interrupted) break;
      const seconds = (performance.now() - t0) / 1000;
      const rec: EpochRecord = { epoch, train_loss: st.lossSum / Math.max(1, st.lossCount), lr: trainer.lr, seconds, images_per_second: images / seconds };
      for (const [k, t] of Object.entries(st.termSums ?? {})) (rec as unknown as Record<string, number>)[`train_${k}`] = t / Math.max(1, st.lossCount);
      if (o.val) {
        const ev = await evaluateWeights(model, model.weights, o.val, epoch);
        Object.assign(rec, { eval_loss: ev.loss, eval_top1: ev.top1, eval_top5: ev.top5 });
        if (ema) {
          const ee = await evaluateWeights(model, ema.weights, o.val, epoch);
          Object.assign(rec, { ema_top1: ee.top1, ema_top5: ee.top5 });
        }
      }
      records.push(rec);
      st.epoch = epoch + 1;
      st.batch = 0;
      const metric = rec.eval_top1 ?? -rec.train_loss;
      if (dir) {
        guardWrite(dir, () => writeEpoch(dir, epoch, metric));
        save(st.epoch === o.epochs);
      }
      o.onEpoch?.(rec);
    }
    if (interrupted) save(false);
  } finally {
    await trainer.release();
    if (teacherSession) await teacherSession.release();
  }
  return { epochs: records, ...(st.best ? { best: st.best } : {}), interrupted, steps: st.step };

  /** Epoch-end files: best weights, checkpoint history, log.jsonl and summary.csv. */
  function writeEpoch(dir: string, epoch: number, metric: number): void {
    if (!st.best || metric > st.best.metric) {
      st.best = { epoch, metric };
      model.saveSafetensors(join(dir, 'best.safetensors'));
    }
    if (o.checkpointHist) {
      model.saveSafetensors(join(dir, `checkpoint-${epoch}.safetensors`));
      const old = join(dir, `checkpoint-${epoch - o.checkpointHist}.safetensors`);
      if (existsSync(old)) rmSync(old);
    }
    writeAtomic(join(dir, 'log.jsonl'), records.map((x) => JSON.stringify(x)).join('\n') + '\n');
    const csv = [SUMMARY_COLUMNS.join(','), ...records.map((x) => SUMMARY_COLUMNS.map((k) => (x[k] === undefined ? '' : String(x[k]))).join(','))];
    writeAtomic(join(dir, 'summary.csv'), `${csv.join('\n')}\n`);
  }
}

/**
 * The training data loader: per epoch, a seeded permutation of the dataset (from seed and epoch only, so a
 * resumed run sees the same order), cut into batches of float32 NCHW images and int32 targets. Decoding and the
 * caller's per-sample transform run in worker threads (./train-worker.ts) with a bounded prefetch window;
 * in-memory gray images (IDX) are shared with the workers through a SharedArrayBuffer, never copied per sample.
 *
 * The transform is given as `{ module, config }`: `module` is the absolute URL of an ES module exporting
 * `makeTransform(config) => (img, sampleIndex, epoch) => Float32Array` (or a promise of either); each worker
 * imports it and builds its own function from the structured-clonable `config`. `sampleIndex` is the index of
 * the sample in the dataset (the same in every epoch), so seeded augmentation can derive its stream from
 * (seed, epoch, sampleIndex) and not depend on which worker ran it.
 *
 * Bad images (decode errors) are skipped and counted, never fatal; a batch is filled from the next samples of
 * the order, so batch composition depends only on the order and the set of bad files. A transform that throws or
 * returns the wrong number of values is a bug and fails the epoch.
 */
import { availableParallelism, freemem } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../runtime/spawn.js';
import { InputError } from '../weights/tensor.js';
import { Rng } from '../util/rng.js';
import { decodeSampleOf, mixSeed, sampleName, type DecodeOptions, type GrayImages, type Skipped, type TrainDataset, type TrainSample } from './datasets.js';
import type { PreprocessConfig } from './preprocess.js';
import type { RgbImage } from './resize.js';

export type SampleTransform = (img: RgbImage, sampleIndex: number, epoch: number) => Float32Array | Promise<Float32Array>;

/** What a transform module exports. */
export type MakeTransform = (config: never) => SampleTransform | Promise<SampleTransform>;

export interface TransformSpec {
  /** Absolute URL (file:) of a module exporting `makeTransform(config)`. */
  module: string;
  /** Passed to makeTransform in each worker: structured-clonable (plain data). */
  config: unknown;
}

export interface LoaderOptions {
  batchSize: number;
  /** The transform's output per sample, [C, H, W]. */
  shape: [number, number, number];
  transform: TransformSpec;
  /** Shuffle seed (default 0): epoch e's order is a permutation drawn from mixSeed(seed, e). */
  seed?: number;
  /** Default true; false keeps the dataset's order (evaluation). */
  shuffle?: boolean;
  /** Drop the last, short batch (default false). */
  dropLast?: boolean;
  /** Worker threads (default: one per core but one); 0 runs decode and transform on this thread. */
  workers?: number;
  /** Batches prepared ahead of the one being consumed (default 2). */
  prefetch?: number;
  /** How image files are decoded (default PIL's: EXIF ignored). */
  decode?: DecodeOptions;
  /**
   * Keep decoded images in memory so later epochs do not decode the files again: 'auto' (default) within
   * `cacheBytes`, 'on' without a limit, 'off' never. In-memory datasets (IDX) need no cache.
   */
  cache?: CacheMode;
  /** The 'auto' budget in bytes of decoded RGB, all workers together (default: a quarter of free memory, at most 2 GiB). */
  cacheBytes?: number;
}

export type CacheMode = 'auto' | 'on' | 'off';

/** The decoded-image budget of `mode`, in bytes (all workers together). */
export function cacheBudget(mode: CacheMode = 'auto', bytes?: number): number {
  if (mode === 'off') return 0;
  if (mode === 'on') return Infinity;
  return bytes ?? Math.min(2 ** 31, Math.floor(freemem() / 4));
}

export interface Batch {
  /** [n, C, H, W] float32, n = batchSize except perhaps the last batch. */
  data: Float32Array;
  shape: [number, number, number, number];
  targets: Int32Array;
  /** Dataset indices of the samples, in batch order. */
  indices: Int32Array;
  epoch: number;
  /** Batch number within the epoch (0-based). */
  batch: number;
  /** The position in the epoch's order after this batch: pass as `start` to resume after it. */
  next: number;
  /** Samples of this batch's span that could not be decoded (skipped). */
  skipped: Skipped[];
}

export interface EpochOptions {
  /** Start at this position of the epoch's order (a Batch's `next`), to resume mid-epoch. */
  start?: number;
}

/** One sample's job for a worker (or this thread); `id` is its place in the chunk sent. */
export interface LoaderJob {
  id: number;
  index: number;
  sample: TrainSample;
  epoch: number;
}

export interface LoaderInit {
  transform: TransformSpec;
  gray?: GrayImages;
  source: string;
  decode: DecodeOptions;
  length: number;
  /** Decoded images this processor may keep, in bytes (0: none). */
  cacheBytes?: number;
}

export type JobResult = { id: number; data: Float32Array } | { id: number; skip: string } | { id: number; fatal: string };

/** Builds the per-sample processing of an init message: what each worker runs (and this thread with workers: 0). */
export async function makeProcessor(init: LoaderInit): Promise<(job: LoaderJob) => Promise<JobResult>> {
  let mod: { makeTransform?: unknown };
  try {
    mod = (await import(init.transform.module)) as { makeTransform?: unknown };
  } catch (e) {
    throw new InputError(`cannot import the transform module ${init.transform.module}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof mod.makeTransform !== 'function') throw new InputError(`the transform module ${init.transform.module} exports no makeTransform(config) function`);
  const fn = (await (mod.makeTransform as (c: unknown) => SampleTransform | Promise<SampleTransform>)(init.transform.config)) as SampleTransform;
  if (typeof fn !== 'function') throw new InputError(`makeTransform of ${init.transform.module} returned ${typeof fn}, not a function (img, sampleIndex, epoch) => Float32Array`);
  // Decoded files by sample index, while they fit the budget (transforms never write into their input).
  const cache = new Map<number, RgbImage>();
  let cached = 0;
  const budget = init.cacheBytes ?? 0;
  return async (job) => {
    let img = cache.get(job.index);
    if (!img) {
      try {
        img = (await decodeSampleOf(job.sample, init.gray, { ...init.decode, channels: 3 })) as RgbImage;
      } catch (e) {
        return { id: job.id, skip: (e as Error).message };
      }
      if (budget > 0 && !('row' in job.sample) && cached + img.data.byteLength <= budget) {
        cache.set(job.index, img);
        cached += img.data.byteLength;
      }
    }
    try {
      const out = await fn(img, job.index, job.epoch);
      if (!(out instanceof Float32Array)) throw new Error(`returned ${out === null ? 'null' : typeof out === 'object' ? (out as object).constructor?.name : typeof out}, not a Float32Array`);
      if (out.length !== init.length) throw new Error(`returned ${out.length} values, expected ${init.length} (the loader's shape)`);
      return { id: job.id, data: out };
    } catch (e) {
      return { id: job.id, fatal: `the transform of ${init.transform.module} failed on ${sampleName(init.source, job.sample)}: ${(e as Error).message.split('\n')[0]}` };
    }
  };
}

export const defaultLoaderWorkers = () => Math.max(1, availableParallelism() - 1);

/** The default transform module (src/data/eval-transform): `tsimm eval`'s pipeline as a loader transform. */
export function evalTransform(preprocess: PreprocessConfig, o: { channels?: 1 | 3; grayMean?: number; grayStd?: number } = {}): TransformSpec {
  return { module: siblingModule(import.meta.url, './eval-transform'), config: { preprocess, ...o } };
}

/** `name` beside the module at `base` (an import.meta.url), with the extension the running code has (.ts or .js). */
export function siblingModule(base: string, name: string): string {
  return new URL(`${name}${base.endsWith('.ts') ? '.ts' : '.js'}`, base).href;
}

interface Slot {
  worker: Worker;
  inflight: number;
}

type Waiter = { resolve: (r: JobResult[]) => void; reject: (e: Error) => void; slot?: Slot };

export class DataLoader {
  readonly batchSize: number;
  readonly seed: number;
  /** Every sample that failed to decode, by dataset index (never retried in later epochs). */
  readonly bad = new Map<number, string>();
  private readonly sampleLen: number;
  private readonly nWorkers: number;
  private slots: Slot[] = [];
  private local?: (job: LoaderJob) => Promise<JobResult>;
  private ready?: Promise<void>;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 0;
  private broken?: Error;
  private closed = false;

  constructor(
    readonly dataset: TrainDataset,
    readonly o: LoaderOptions,
  ) {
    if (!(Number.isInteger(o.batchSize) && o.batchSize > 0)) throw new InputError(`batch size must be a positive integer, got ${o.batchSize}`);
    if (!o.shape || o.shape.length !== 3 || !o.shape.every((d) => Number.isInteger(d) && d > 0)) throw new InputError(`shape must be [C, H, W] positive integers, got ${JSON.stringify(o.shape)}`);
    if (!dataset.length) throw new InputError(`the dataset ${dataset.source} has no samples${dataset.skipped.length ? ` (${dataset.skipped.length} entries skipped; first: ${dataset.skipped[0]!.file}: ${dataset.skipped[0]!.error})` : ''}`);
    this.batchSize = o.batchSize;
    this.seed = o.seed ?? 0;
    this.sampleLen = o.shape[0] * o.shape[1] * o.shape[2];
    this.nWorkers = o.workers ?? defaultLoaderWorkers();
  }

  /** Batches in an epoch (if no image is bad). */
  get batchesPerEpoch(): number {
    const n = this.dataset.length;
    return this.o.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The dataset indices in epoch `epoch`'s order: a function of (seed, epoch) alone. */
  order(epoch: number): Int32Array {
    if (this.o.shuffle === false) return Int32Array.from({ length: this.dataset.length }, (_, i) => i);
    return Int32Array.from(new Rng(mixSeed(this.seed, epoch)).permutation(this.dataset.length));
  }

  /** Skipped samples, as { file, error }. */
  skippedFiles(): Skipped[] {
    return [...this.bad].map(([i, error]) => ({ file: this.dataset.sampleName(i), error }));
  }

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    const ds = this.dataset;
    let gray = ds.gray;
    if (gray && !(gray.data.buffer instanceof SharedArrayBuffer) && this.nWorkers > 0) {
      const shared = new Uint8Array(new SharedArrayBuffer(gray.data.byteLength));
      shared.set(gray.data);
      gray = { ...gray, data: shared };
    }
    const budget = ds.gray ? 0 : cacheBudget(this.o.cache, this.o.cacheBytes);
    const init: LoaderInit = { transform: this.o.transform, gray, source: ds.source, decode: this.o.decode ?? {}, length: this.sampleLen, cacheBytes: budget / Math.max(1, this.nWorkers) };
    if (this.nWorkers === 0) {
      this.ready = makeProcessor(init).then((p) => {
        this.local = p;
      });
      return this.ready;
    }
    this.ready = Promise.all(
      Array.from({ length: this.nWorkers }, () => {
        const worker = spawnWorker(import.meta.url, 'train-worker');
        const slot: Slot = { worker, inflight: 0 };
        this.slots.push(slot);
        return new Promise<void>((resolve, reject) => {
          worker.on('message', (m: { type: 'ready' } | { type: 'init-error'; error: string } | { type: 'results'; id: number; results: JobResult[] }) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'init-error') reject(new InputError(m.error));
            else {
              slot.inflight -= m.results.length;
              const w = this.waiters.get(m.id);
              this.waiters.delete(m.id);
              w?.resolve(m.results);
            }
          });
          const die = (e: Error) => {
            if (this.closed) return;
            this.broken ??= new Error(`a data loader worker died: ${e.message.split('\n')[0]}`);
            reject(this.broken);
            for (const [id, w] of this.waiters) {
              if (w.slot === slot) {
                this.waiters.delete(id);
                w.reject(this.broken);
              }
            }
          };
          worker.on('error', die);
          worker.on('exit', (code) => die(new Error(`exited with code ${code}`)));
          worker.postMessage({ type: 'init', init });
        });
      }),
    ).then(() => undefined);
    // A failed start leaves no workers behind.
    this.ready.catch(() => this.close());
    return this.ready;
  }

  /** Whether samples go to the worker that caches them (index mod workers) rather than the least busy one. */
  private get affinity(): boolean {
    return this.nWorkers > 1 && !this.dataset.gray && cacheBudget(this.o.cache, this.o.cacheBytes) > 0;
  }

  /** Run a chunk of jobs on a worker (one message each way, results transferred): `slotIndex`, or the least busy. */
  private submit(jobs: LoaderJob[], slotIndex?: number): Promise<JobResult[]> {
    if (this.broken) return Promise.reject(this.broken);
    const local = this.local;
    if (local) return (async () => { const out: JobResult[] = []; for (const j of jobs) out.push(await local(j)); return out; })();
    let slot = this.slots[0]!;
    if (slotIndex !== undefined) slot = this.slots[slotIndex]!;
    else for (const s of this.slots) if (s.inflight < slot.inflight) slot = s;
    slot.inflight += jobs.length;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject, slot });
      slot.worker.postMessage({ type: 'jobs', id, jobs });
    });
  }

  /** The batches of epoch `epoch` (any integer ≥ 0), from `start` in its order. */
  async *epoch(epoch: number, eo: EpochOptions = {}): AsyncGenerator<Batch> {
    if (this.closed) throw new Error('the data loader is closed');
    await this.start();
    const order = this.order(epoch);
    const n = order.length;
    const bs = this.batchSize;
    const window = Math.max(1, (this.o.prefetch ?? 2) + 1) * bs;
    const pending = new Map<number, Promise<JobResult | { skip: string; known: true }>>();
    let dispatched = eo.start ?? 0;
    let pos = dispatched;
    if (!(Number.isInteger(pos) && pos >= 0 && pos <= n)) throw new InputError(`start must be a position in [0, ${n}], got ${eo.start}`);
    // Samples go to workers in chunks of consecutive positions: fewer messages, same results.
    const chunk = Math.max(1, Math.min(16, Math.floor(bs / Math.max(1, this.nWorkers))));
    const affinity = this.affinity;
    const send = (jobs: LoaderJob[], at: number[], slot?: number) => {
      const p = this.submit(jobs, slot);
      // Rejections are observed when their position is consumed.
      p.catch(() => {});
      at.forEach((position, k) => {
        const r = p.then((rs) => rs[k]!);
        r.catch(() => {});
        pending.set(position, r);
      });
    };
    const fill = () => {
      while (dispatched < n && dispatched < pos + window) {
        // With a cache, each worker gets the samples it holds: one chunk per worker per round.
        const groups = Array.from({ length: affinity ? this.nWorkers : 1 }, () => ({ jobs: [] as LoaderJob[], at: [] as number[] }));
        let taken = 0;
        while (taken < chunk * groups.length && dispatched < n && dispatched < pos + window) {
          const index = order[dispatched]!;
          const known = this.bad.get(index);
          if (known !== undefined) pending.set(dispatched, Promise.resolve({ skip: known, known: true as const }));
          else {
            const g = groups[affinity ? index % groups.length : 0]!;
            g.jobs.push({ id: g.jobs.length, index, sample: this.dataset.samples[index]!, epoch });
            g.at.push(dispatched);
            taken++;
          }
          dispatched++;
        }
        groups.forEach((g, i) => g.jobs.length && send(g.jobs, g.at, affinity ? i : undefined));
      }
    };
    let batch = 0;
    while (pos < n) {
      const data = new Float32Array(bs * this.sampleLen);
      const targets = new Int32Array(bs);
      const indices = new Int32Array(bs);
      const skipped: Skipped[] = [];
      let k = 0;
      while (k < bs && pos < n) {
        fill();
        const r = await pending.get(pos)!;
        pending.delete(pos);
        const index = order[pos]!;
        pos++;
        if ('fatal' in r) throw new Error(r.fatal);
        if ('skip' in r) {
          if (!('known' in r)) this.bad.set(index, r.skip);
          skipped.push({ file: this.dataset.sampleName(index), error: r.skip });
          continue;
        }
        data.set(r.data, k * this.sampleLen);
        targets[k] = this.dataset.samples[index]!.target;
        indices[k] = index;
        k++;
      }
      if (k === 0 || (k < bs && this.o.dropLast)) break;
      const [c, h, w] = this.o.shape;
      yield {
        data: k === bs ? data : data.slice(0, k * this.sampleLen),
        shape: [k, c, h, w],
        targets: k === bs ? targets : targets.slice(0, k),
        indices: k === bs ? indices : indices.slice(0, k),
        epoch,
        batch: batch++,
        next: pos,
        skipped,
      };
    }
  }

  /** Stop the workers (waits for them to exit). The loader cannot be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('the data loader was closed');
    for (const w of this.waiters.values()) w.reject(err);
    this.waiters.clear();
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** Worker threads running (0 after close, or with workers: 0). */
  get workerCount(): number {
    return this.slots.length;
  }
}

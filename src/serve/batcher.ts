/**
 * Dynamic batching, as Triton's dynamic_batching: requests for one model wait in a bounded queue; when an
 * instance is free, the requests queued so far (up to max batch images) run as one batch — at once when the
 * batch is full or when no other batch is running (waiting then only adds latency: nothing is coming back to
 * free an instance sooner, and a closed-loop client sends nothing until it is answered), else once the oldest has
 * waited `maxQueueDelayMs` (default 0, as Triton's max_queue_delay_microseconds). A full queue rejects at once (503 with
 * Retry-After), a request still queued after `queueTimeoutMs` fails with 503, and a request whose client has
 * gone is dropped before it runs.
 */
import { HttpError, type ModelSpec } from './protocol.js';
import type { ServerMetrics } from './metrics.js';
import { ModelStats } from './triton.js';
import type { InferenceWorker } from './workers.js';

export interface BatcherOptions {
  maxBatch: number;
  maxQueueDelayMs: number;
  maxQueue: number;
  queueTimeoutMs: number;
}

export interface BatchResult {
  /** This request's rows of the output. */
  logits: Float32Array;
  queueMs: number;
  computeMs: number;
  /** Images in the batch it ran in. */
  batch: number;
}

interface Queued {
  data: Float32Array;
  n: number;
  enqueued: number;
  cancelled: () => boolean;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Batcher {
  private readonly queue: Queued[] = [];
  private inFlight = 0;
  private delayTimer?: NodeJS.Timeout;
  private idleWaiters: (() => void)[] = [];
  private readonly labels: Record<string, string>;
  /** Triton's statistics extension (GET /v2/models/{m}/stats). */
  readonly stats = new ModelStats();

  constructor(
    /** The model's name, version, input shape [C, H, W] and classes. */
    readonly spec: ModelSpec,
    private readonly instances: InferenceWorker[],
    readonly o: BatcherOptions,
    private readonly metrics: ServerMetrics,
  ) {
    this.labels = { model: spec.name, version: spec.version };
  }

  /** Requests waiting or running. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Queue `n` images; `timeoutMs` (a request's own `timeout` parameter) can only shorten the queue timeout. */
  submit(data: Float32Array, n: number, cancelled: () => boolean = () => false, timeoutMs?: number): Promise<BatchResult> {
    const timeout = Math.min(this.o.queueTimeoutMs, timeoutMs ?? Infinity);
    if (this.queue.length >= this.o.maxQueue) {
      this.metrics.failure.inc({ ...this.labels, reason: 'REJECTED' });
      this.stats.failed(0);
      return Promise.reject(new HttpError(503, `${this.spec.name}'s queue is full (${this.o.maxQueue} requests); retry later`, { 'retry-after': '1' }));
    }
    return new Promise((resolve, reject) => {
      const q: Queued = { data, n, enqueued: performance.now(), cancelled, resolve, reject, timer: undefined as unknown as NodeJS.Timeout };
      q.timer = setTimeout(() => {
        const i = this.queue.indexOf(q);
        if (i < 0) return;
        this.queue.splice(i, 1);
        this.metrics.failure.inc({ ...this.labels, reason: 'REJECTED' });
        this.stats.failed(performance.now() - q.enqueued);
        this.gauge();
        reject(new HttpError(503, `${this.spec.name}: the request waited ${timeout} ms in the queue without running; the server is overloaded, retry later`, { 'retry-after': '1' }));
      }, timeout);
      this.queue.push(q);
      this.gauge();
      this.pump();
    });
  }

  private gauge(): void {
    this.metrics.pending.set(this.labels, this.pending);
    if (!this.pending) for (const w of this.idleWaiters.splice(0)) w();
  }

  private queuedImages(): number {
    let n = 0;
    for (const q of this.queue) n += q.n;
    return n;
  }

  private pump(): void {
    for (;;) {
      this.dropCancelled();
      if (!this.queue.length) return;
      const worker = this.instances.find((w) => !w.busy);
      if (!worker) return; // a finishing batch pumps again
      const waited = performance.now() - this.queue[0]!.enqueued;
      if (this.inFlight > 0 && this.queuedImages() < this.o.maxBatch && waited < this.o.maxQueueDelayMs) {
        if (!this.delayTimer) {
          this.delayTimer = setTimeout(() => {
            this.delayTimer = undefined;
            this.pump();
          }, Math.max(0, this.o.maxQueueDelayMs - waited));
        }
        return;
      }
      this.dispatch(worker);
    }
  }

  private dropCancelled(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const q = this.queue[i]!;
      if (!q.cancelled()) continue;
      this.queue.splice(i, 1);
      clearTimeout(q.timer);
      this.metrics.failure.inc({ ...this.labels, reason: 'CANCELED' });
      this.stats.failed(performance.now() - q.enqueued);
      q.reject(new HttpError(499, 'the client closed the connection before the request ran'));
    }
    this.gauge();
  }

  private dispatch(worker: InferenceWorker): void {
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
    }
    const batch: Queued[] = [];
    let images = 0;
    while (this.queue.length && images + this.queue[0]!.n <= this.o.maxBatch) {
      const q = this.queue.shift()!;
      clearTimeout(q.timer);
      batch.push(q);
      images += q.n;
    }
    if (!batch.length) {
      // A request larger than max batch never reaches here (the protocol rejects it); be safe anyway.
      const q = this.queue.shift()!;
      clearTimeout(q.timer);
      batch.push(q);
      images = q.n;
    }
    const start = performance.now();
    const startAt = performance.timeOrigin + start;
    const [c, h, w] = this.spec.input.shape;
    const input = c * h * w;
    const output = this.spec.output.classes;
    // One request whose tensor owns its whole buffer is sent as it is (transferred, not copied).
    const alone = batch.length === 1 && batch[0]!.data.byteOffset === 0 && batch[0]!.data.buffer.byteLength === batch[0]!.data.byteLength;
    const data = alone ? batch[0]!.data : new Float32Array(images * input);
    if (!alone) {
      let off = 0;
      for (const q of batch) {
        data.set(q.data, off);
        off += q.n * input;
      }
    }
    this.inFlight += batch.length;
    this.gauge();
    worker.run(data, [images, ...this.spec.input.shape]).then(
      (r) => {
        const l = this.labels;
        const endAt = performance.timeOrigin + performance.now();
        // Triton's phases: input = batching and the hand-over to the worker, infer = the session's run,
        // output = the hand-back and the split into requests.
        const t = { inputMs: Math.max(0, r.startAt - startAt), inferMs: r.computeMs, outputMs: Math.max(0, endAt - r.endAt) };
        this.metrics.execCount.inc(l);
        this.metrics.count.inc(l, images);
        this.metrics.batchHist.observe(l, images);
        this.metrics.computeHist.observe(l, r.computeMs / 1000);
        this.stats.execution(images, t);
        let row = 0;
        for (const q of batch) {
          const queueMs = start - q.enqueued;
          this.metrics.queueHist.observe(l, queueMs / 1000);
          this.metrics.queueUs.inc(l, Math.round(queueMs * 1000));
          this.metrics.computeUs.inc(l, Math.round(r.computeMs * 1000));
          this.metrics.success.inc(l);
          this.metrics.requestUs.inc(l, Math.round((queueMs + r.computeMs) * 1000));
          this.stats.request(queueMs, t);
          q.resolve({ logits: batch.length === 1 ? r.logits : r.logits.slice(row * output, (row + q.n) * output), queueMs, computeMs: r.computeMs, batch: images });
          row += q.n;
        }
      },
      (e: Error) => {
        for (const q of batch) {
          this.metrics.failure.inc({ ...this.labels, reason: 'BACKEND' });
          this.stats.failed(performance.now() - q.enqueued);
          q.reject(new HttpError(500, `${this.spec.name} failed to run: ${e.message}`));
        }
      },
    ).finally(() => {
      this.inFlight -= batch.length;
      this.gauge();
      this.pump();
    });
  }

  /** Resolves once nothing is queued or running (for a graceful shutdown). */
  drained(): Promise<void> {
    if (!this.pending) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}

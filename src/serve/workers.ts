/**
 * Inference instances: each a worker thread holding one session on the model's ONNX file (Triton's
 * instance_group). A worker that dies is replaced; the batch it held fails with a 500, nothing else does.
 */
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../runtime/spawn.js';
import type { SessionOptions } from '../runtime/session.js';

export interface RunResult {
  logits: Float32Array;
  computeMs: number;
  /** When the session's run started and ended, in ms on the shared clock (performance.timeOrigin + now()). */
  startAt: number;
  endAt: number;
}

type Reply = ({ id: number } & RunResult) | { id: number; error: string };

export class InferenceWorker {
  private worker!: Worker;
  private pending?: { id: number; resolve: (r: RunResult) => void; reject: (e: Error) => void };
  private next = 0;
  private closed = false;
  /** Resolves when the session is loaded; rejects with ONNX Runtime's reason. */
  ready!: Promise<void>;

  constructor(
    readonly path: string,
    readonly session: SessionOptions,
  ) {
    this.start();
  }

  private start(): void {
    const w = spawnWorker(import.meta.url, 'infer-worker', { workerData: { path: this.path, session: this.session } });
    this.worker = w;
    this.ready = new Promise((resolve, reject) => {
      const onReady = (m: { ready: boolean; error?: string }) => {
        if (!('ready' in m)) return;
        w.off('message', onReady);
        if (m.ready) resolve();
        else reject(new Error(`the model's session failed to load: ${m.error}`));
      };
      w.on('message', onReady);
      w.once('error', reject);
    });
    w.on('message', (m: Reply | { ready: boolean }) => {
      if ('ready' in m || !this.pending || m.id !== this.pending.id) return;
      const p = this.pending;
      this.pending = undefined;
      if ('error' in m) p.reject(new Error(m.error));
      else p.resolve({ logits: m.logits, computeMs: m.computeMs, startAt: m.startAt, endAt: m.endAt });
    });
    w.on('exit', () => {
      if (this.closed) return;
      const p = this.pending;
      this.pending = undefined;
      p?.reject(new Error('the inference worker exited'));
      this.start();
      this.ready.catch(() => undefined);
    });
    w.on('error', () => undefined); // 'exit' follows and replaces the worker
  }

  get busy(): boolean {
    return this.pending !== undefined;
  }

  run(data: Float32Array, shape: number[]): Promise<RunResult> {
    if (this.pending) throw new Error('InferenceWorker.run while busy');
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pending = { id, resolve, reject };
      this.worker.postMessage({ id, data, shape }, [data.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.worker.terminate();
  }
}

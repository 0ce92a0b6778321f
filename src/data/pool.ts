/**
 * A pool of preprocessing workers (worker_threads), so decoding and resizing run beside inference instead of
 * before it. `size` 0 preprocesses on the calling thread.
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { spawnWorker } from '../runtime/spawn.js';
import { preprocessImage, type PreprocessConfig } from './preprocess.js';

type Result = { data: Float32Array } | { error: string };

/** One worker per core but one: the main thread drives ONNX Runtime, whose own threads use the cores too. */
export const defaultPoolSize = () => Math.max(1, availableParallelism() - 1);

export class PreprocessPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { id: number; input: string | Uint8Array; config: PreprocessConfig }[] = [];
  private readonly pending = new Map<number, (r: Result) => void>();
  private next = 0;

  constructor(readonly size = defaultPoolSize()) {
    for (let i = 0; i < size; i++) {
      const w = spawnWorker(import.meta.url, 'worker');
      w.on('message', (m: { id: number } & Result) => {
        this.pending.get(m.id)?.(m);
        this.pending.delete(m.id);
        this.idle.push(w);
        this.pump();
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) this.idle.pop()!.postMessage(this.queue.shift()!);
  }

  /** Preprocess one image (a file, or its encoded bytes); rejects with the decoder's message for a bad one. */
  run(input: string | Uint8Array, config: PreprocessConfig): Promise<Float32Array> {
    if (this.size === 0) return preprocessImage(input, config);
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pending.set(id, (r) => ('error' in r ? reject(new Error(r.error)) : resolve(r.data)));
      this.queue.push({ id, input, config });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * A pool of preprocessing workers (worker_threads), so decoding and resizing run beside inference instead of
 * before it. `size` 0 preprocesses on the calling thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { preprocessImage, type PreprocessConfig } from './preprocess.js';

type Result = { data: Float32Array } | { error: string };

/** One worker per core but one: the main thread drives ONNX Runtime, whose own threads use the cores too. */
export const defaultPoolSize = () => Math.max(1, availableParallelism() - 1);

/**
 * Built, the worker is worker.js beside this file. Run from the TypeScript sources (tests, tsx), a worker does
 * not inherit tsx's loader, so it registers it first.
 */
function spawnWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.js', import.meta.url));
  const api = import.meta.resolve('tsx/esm/api');
  const file = new URL('./worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); });`, { eval: true });
}

export class PreprocessPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: { id: number; path: string; config: PreprocessConfig }[] = [];
  private readonly pending = new Map<number, (r: Result) => void>();
  private next = 0;

  constructor(readonly size = defaultPoolSize()) {
    for (let i = 0; i < size; i++) {
      const w = spawnWorker();
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

  /** Preprocess one image; rejects with the decoder's message for a bad file. */
  run(path: string, config: PreprocessConfig): Promise<Float32Array> {
    if (this.size === 0) return preprocessImage(path, config);
    return new Promise((resolve, reject) => {
      const id = this.next++;
      this.pending.set(id, (r) => ('error' in r ? reject(new Error(r.error)) : resolve(r.data)));
      this.queue.push({ id, path, config });
      this.pump();
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

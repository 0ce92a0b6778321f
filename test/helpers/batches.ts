/** A BatchSource over in-memory samples for fit() tests: shuffled per epoch by (seed, epoch) alone, as a real loader. */
import type { Batch, BatchSource } from '../../src/train/fit.js';
import { Rng } from '../../src/util/rng.js';

export function memoryBatches(samples: { x: Float32Array; t: number }[], batch: number, seed: number, shape: [number, number, number]): BatchSource {
  const n = shape[0] * shape[1] * shape[2];
  const count = samples.length;
  return {
    batchesPerEpoch: Math.floor(count / batch),
    async *batches(epoch: number, skip = 0): AsyncIterable<Batch> {
      const order = new Rng(seed + 1000 * (epoch + 1)).permutation(count);
      for (let b = skip; b < Math.floor(count / batch); b++) {
        const x = new Float32Array(batch * n);
        const targets = new Int32Array(batch);
        for (let i = 0; i < batch; i++) {
          const s = samples[order[b * batch + i]!]!;
          x.set(s.x, i * n);
          targets[i] = s.t;
        }
        yield { x: { shape: [batch, ...shape], data: x }, targets };
      }
    },
  };
}

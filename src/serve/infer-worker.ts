/**
 * An inference worker: one ONNX Runtime session, run off the main thread (onnxruntime-node's run() holds the
 * thread it is called on for the whole computation, which would stall every other request).
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { createSession } from '../runtime/session.js';
import type { SessionOptions } from '../runtime/session.js';

interface Init {
  path: string;
  session: SessionOptions;
}
interface Job {
  id: number;
  data: Float32Array;
  shape: number[];
}

const init = workerData as Init;
const port = parentPort!;

createSession(init.path, init.session).then(
  (session) => {
    const input = session.inputNames[0]!;
    const output = session.outputNames.includes('logits') ? 'logits' : session.outputNames[0]!;
    port.postMessage({ ready: true, input, output });
    port.on('message', async (job: Job) => {
      try {
        // Times on the clock every thread shares (timeOrigin + now), so the batcher can split its round trip.
        const startAt = performance.timeOrigin + performance.now();
        const r = await session.run({ [input]: new ort.Tensor('float32', job.data, job.shape) }, [output]);
        const logits = r[output]!.data as Float32Array;
        const endAt = performance.timeOrigin + performance.now();
        port.postMessage({ id: job.id, logits, computeMs: endAt - startAt, startAt, endAt }, [logits.buffer as ArrayBuffer]);
      } catch (e) {
        port.postMessage({ id: job.id, error: (e as Error).message.split('\n')[0] });
      }
    });
  },
  (e: Error) => port.postMessage({ ready: false, error: e.message.split('\n')[0] }),
);

/** A preprocessing worker: decodes and transforms images off the main thread (which runs ONNX Runtime). */
import { parentPort } from 'node:worker_threads';
import { preprocessImage, type PreprocessConfig } from './preprocess.js';

interface Job {
  id: number;
  input: string | Uint8Array;
  config: PreprocessConfig;
}

parentPort!.on('message', async (job: Job) => {
  try {
    const data = await preprocessImage(job.input, job.config);
    parentPort!.postMessage({ id: job.id, data }, [data.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: job.id, error: (e as Error).message });
  }
});

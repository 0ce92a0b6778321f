/**
 * A training data worker (see ./loader.ts): imports the caller's transform module once, then decodes and
 * transforms samples, posting each float32 result back transferred (no copy).
 */
import { parentPort } from 'node:worker_threads';
import { makeProcessor, type JobResult, type LoaderInit, type LoaderJob } from './loader.js';

type Message = { type: 'init'; init: LoaderInit } | { type: 'jobs'; id: number; jobs: LoaderJob[] };

let processor: Promise<(job: LoaderJob) => Promise<JobResult>> | undefined;

parentPort!.on('message', async (m: Message) => {
  if (m.type === 'init') {
    processor = makeProcessor(m.init);
    try {
      await processor;
      parentPort!.postMessage({ type: 'ready' });
    } catch (e) {
      parentPort!.postMessage({ type: 'init-error', error: (e as Error).message });
    }
    return;
  }
  const results: JobResult[] = [];
  const transfer: ArrayBuffer[] = [];
  for (const job of m.jobs) {
    let r: JobResult;
    try {
      r = await (await processor!)(job);
    } catch (e) {
      r = { id: job.id, fatal: (e as Error).message };
    }
    if ('data' in r) {
      let data = r.data;
      // Transfer only a buffer the result owns whole (once); a view into a shared or larger buffer is copied.
      if (data.buffer instanceof SharedArrayBuffer || data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength || transfer.includes(data.buffer)) data = data.slice();
      transfer.push(data.buffer as ArrayBuffer);
      r = { id: r.id, data };
    }
    results.push(r);
  }
  parentPort!.postMessage({ type: 'results', id: m.id, results }, transfer);
});

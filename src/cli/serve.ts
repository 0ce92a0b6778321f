/** `tsimm serve`: the Open Inference Protocol server (src/serve) for one or more models. */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { imagenetClasses } from '../data/labels.js';
import { PreprocessPool } from '../data/pool.js';
import { resolvePreprocess } from '../data/preprocess.js';
import { createModel, type Model } from '../model.js';
import { resolveModel } from '../models/index.js';
import { needsExternalData } from '../onnx/export.js';
import { writeChunksAtomic } from '../node/files.js';
import { Batcher } from '../serve/batcher.js';
import { InferenceServer, type ServedModel } from '../serve/server.js';
import { InferenceWorker } from '../serve/workers.js';
import { labelOf } from '../tasks/classify.js';
import { calibrate, imageBatches, int8Onnx } from '../tasks/quantize.js';
import { InputError } from '../weights/tensor.js';
import { resolveDevice, unavailableReason } from '../runtime/device.js';
import { int, num, oneOf, str, UsageError, type Command, type Values } from './args.js';
import { DEVICE_OPTIONS, deviceFrom } from './device.js';
import { PREPROCESS_OPTIONS } from './options.js';
import { imagesIn, loadWeights, runPreprocess, trainedRun, WEIGHT_OPTIONS } from './model-args.js';

export const serve: Command = {
  usage: 'MODEL[.TAG]... [--weights [MODEL=]FILE]... [--port 8080] [--host 127.0.0.1] [--max-batch 8] [--max-queue-delay 0] [--precision int8 --calib DIR]',
  summary: 'Serve models over the Open Inference Protocol (KServe v2 REST) with dynamic batching in worker threads; demo page at /.',
  options: {
    ...WEIGHT_OPTIONS,
    weights: { type: 'string', multiple: true, arg: '[MODEL=]FILE', help: 'checkpoint for MODEL (repeat per model; a bare FILE when one model is served); default: the pretrained weights' },
    'random-weights': { type: 'boolean', help: 'models without --weights get deterministic random weights (load tests): their predictions mean nothing' },
    port: { type: 'string', short: 'p', arg: 'N', help: 'TCP port (default 8080; 0 picks a free one)' },
    host: { type: 'string', arg: 'ADDR', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces, as in a container)' },
    'max-batch': { type: 'string', arg: 'N', help: 'most images per model execution (default 8; 1 turns batching off)' },
    'max-queue-delay': { type: 'string', arg: 'MS', help: 'longest a request waits for others to batch with while another batch runs (default 0 ms, as Triton; never when nothing runs)' },
    'max-queue': { type: 'string', arg: 'N', help: 'requests waiting per model before new ones get 503 (default 256)' },
    'queue-timeout': { type: 'string', arg: 'MS', help: 'a request still queued after this gets 503 (default 30000)' },
    workers: { type: 'string', arg: 'N', help: 'inference worker threads per model, one session each (default 1)' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime threads per worker (default: the cores shared among all workers)' },
    'decode-workers': { type: 'string', arg: 'N', help: 'image decoding threads (default: cores − 1, at least 1)' },
    'max-body': { type: 'string', arg: 'MB', help: 'largest request body (default 32 MB; larger get 413)' },
    'max-pixels': PREPROCESS_OPTIONS['max-pixels']!, // one default and one wording with predict/eval/train
    'request-timeout': { type: 'string', arg: 'S', help: 'a request must arrive in full within this (default 60 s)' },
    size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
    precision: { type: 'string', arg: 'fp32|fp16|int8', help: 'fp16 serves a float16 graph (fp32 in and out; for GPUs), int8 a model quantized on --calib images (default fp32)' },
    calib: { type: 'string', arg: 'DIR', help: 'calibration images for --precision int8' },
    ...DEVICE_OPTIONS,
    'access-log': { type: 'boolean', help: 'one JSON line per request on stderr' },
  },
  async run(p, v) {
    if (!p.length) throw new UsageError('expected one or more model names');
    const names = [...new Set(p)];
    for (const n of names) resolveModel(n); // unknown names fail before anything starts
    const weights = weightsByModel(names, v);
    const precision = oneOf(v, 'precision', ['fp32', 'fp16', 'int8'] as const) ?? 'fp32';
    const device = deviceFrom(v);
    // A device this onnxruntime-node cannot run at all fails before the port opens.
    const unavailable = unavailableReason(resolveDevice(device.device));
    if (unavailable && !device.allowCpuFallback) throw new InputError(unavailable);
    const calib = precision === 'int8' ? imagesIn(str(v, 'calib') ?? '') : undefined;
    if (precision === 'int8' && !str(v, 'calib')) throw new UsageError('--calib is required with --precision int8: calibration images decide the activation ranges');
    const workersPer = int(v, 'workers') ?? 1;
    const cores = availableParallelism();
    const threads = int(v, 'threads') ?? Math.max(1, Math.floor(cores / (workersPer * names.length)));
    const batch = { maxBatch: int(v, 'max-batch') ?? 8, maxQueueDelayMs: num(v, 'max-queue-delay', 0, 60_000) ?? 0, maxQueue: int(v, 'max-queue') ?? 256, queueTimeoutMs: int(v, 'queue-timeout') ?? 30_000 };
    const port = int(v, 'port', 0) ?? 8080;
    if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
    const pool = new PreprocessPool(int(v, 'decode-workers') ?? Math.max(1, cores - 1));
    const server = new InferenceServer({
      host: str(v, 'host') ?? '127.0.0.1',
      port,
      maxBodyBytes: Math.round((num(v, 'max-body', 0.001) ?? 32) * 1024 * 1024),
      requestTimeoutMs: Math.round((num(v, 'request-timeout', 0.1) ?? 60) * 1000),
      accessLog: !!v['access-log'],
      pool,
    });
    const dir = mkdtempSync(join(tmpdir(), 'tsimm-serve-'));
    const instances: InferenceWorker[] = [];
    const cleanup = async () => {
      await Promise.all(instances.map((w) => w.close()));
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    };
    let url: string;
    try {
      url = await server.listen();
    } catch (e) {
      await cleanup();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new InputError(`port ${port} is in use; pick another with --port (0 picks a free one)`);
      if (code === 'EADDRNOTAVAIL') throw new InputError(`${str(v, 'host')} is not an address of this machine; use 127.0.0.1 or 0.0.0.0`);
      throw e;
    }
    // The line a supervisor or a test waits for, on stdout; liveness is up from here, readiness once loaded.
    process.stdout.write(`tsimm serve: listening on ${url} (${names.join(', ')} loading)\n`);

    let stopping: Promise<number> | undefined;
    const stop = (signal: string) => {
      stopping ??= (async () => {
        process.stderr.write(`tsimm serve: ${signal}: draining (no new connections; finishing queued requests)\n`);
        const ok = await server.shutdown(30_000);
        await cleanup();
        process.stderr.write(`tsimm serve: ${ok ? 'stopped' : 'stopped at the 30 s deadline with requests unfinished'}\n`);
        return ok ? 0 : 1;
      })();
      return stopping;
    };
    const stopped = new Promise<number>((resolve) => {
      process.once('SIGTERM', () => void stop('SIGTERM').then(resolve));
      process.once('SIGINT', () => void stop('SIGINT').then(resolve));
      process.once('SIGHUP', () => void stop('SIGHUP').then(resolve));
      // npm (`npx`, `npm exec`, `npm run`) killed with SIGTERM does not pass it on: it exits 143, its shell child
      // dies, and this process is left to init, its parent changed. Drain and exit then, as on SIGTERM, rather than
      // listen on as an orphan nobody can stop. Only under npm (its npm_command in the environment): a server
      // detached on purpose (nohup, setsid, a shell's `&` then exit) is left to run.
      if (process.env['npm_command'] !== undefined) {
        const parent = process.ppid;
        const watch = setInterval(() => {
          if (process.ppid !== parent) void stop('npm, the parent process, is gone').then(resolve);
        }, 500);
        watch.unref();
      }
    });

    for (const name of names) {
      try {
        const served = await loadModel(name, v, weights.get(name), precision, calib, dir, batch.maxBatch);
        served.model.info['device'] = resolveDevice(device.device);
        served.model.serving = { maxQueueDelayMs: batch.maxQueueDelayMs, instances: workersPer, threads, kind: resolveDevice(device.device) === 'cpu' ? 'KIND_CPU' : 'KIND_GPU' };
        server.models.set(name, served.model);
        const ws = Array.from({ length: workersPer }, () => new InferenceWorker(served.path, { threads, ...device, spinning: false }));
        instances.push(...ws);
        await Promise.all(ws.map((w) => w.ready));
        served.model.batcher = new Batcher(served.model.spec, ws, batch, server.metrics);
        process.stderr.write(`tsimm serve: ${name} ready (${workersPer} worker${workersPer > 1 ? 's' : ''} × ${threads} thread${threads > 1 ? 's' : ''}, max batch ${batch.maxBatch}, delay ${batch.maxQueueDelayMs} ms)\n`);
      } catch (e) {
        process.stderr.write(`tsimm serve: error: ${name}: ${(e as Error).message}\n`);
        await stop('load failure');
        return 1;
      }
    }
    if (!stopping) process.stdout.write(`tsimm serve: ready: ${url}/v2/health/ready\n`);
    return stopped;
  },
};

/** --weights MODEL=FILE (or a bare FILE for a single model) → file per served name. */
function weightsByModel(names: string[], v: Values): Map<string, string> {
  const raw = v['weights'];
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  const out = new Map<string, string>();
  for (const w of list) {
    const eq = w.indexOf('=');
    const [name, file] = eq > 0 && names.includes(w.slice(0, eq)) ? [w.slice(0, eq), w.slice(eq + 1)] : [undefined, w];
    if (name === undefined && names.length > 1) throw new UsageError(`--weights ${w}: with several models, name the model: --weights ${names[0]}=FILE`);
    const key = name ?? names[0]!;
    if (out.has(key)) throw new UsageError(`--weights given twice for ${key}`);
    out.set(key, file);
  }
  return out;
}

/** Build one model, write the ONNX file its workers (and the demo page) run, and describe it. */
async function loadModel(name: string, v: Values, weights: string | undefined, precision: 'fp32' | 'fp16' | 'int8', calib: string[] | undefined, dir: string, maxBatch: number): Promise<{ model: ServedModel; path: string }> {
  const run = trainedRun(name, weights);
  const model: Model = createModel(name, { inputSize: int(v, 'size') ?? run?.size, ...(run ? { numClasses: run.numClasses, inChans: run.inChans } : {}) });
  if (v['random-weights'] && !weights) model.initWeights();
  else await loadWeights(model, weights, str(v, 'keys'), true);
  const maxPixels = int(v, 'max-pixels');
  const preprocess = resolvePreprocess(model.cfg, { ...runPreprocess(run), size: model.inputSize, ...(maxPixels ? { maxPixels } : {}) });
  const file = (p: string) => join(dir, `${name.replace(/[^\w.-]/g, '_')}.${p}.onnx`);
  const path = file(precision);
  const onnxFiles: ServedModel['onnxFiles'] = { [precision]: path };
  if (calib) writeChunksAtomic(path, [int8Onnx(model, await calibrate(model, imageBatches(model, calib)))]);
  else model.exportOnnx(path, { outputs: ['logits'], float16: precision === 'fp16' });
  // The demo page runs fp16 where its WebGPU has shader-f16: an fp32 model gets an fp16 twin for it.
  if (precision === 'fp32' && !needsExternalData(model.graph, true)) model.exportOnnx((onnxFiles.fp16 = file('fp16')), { outputs: ['logits'], float16: true });
  model.weights = undefined; // in the file now; each worker's session holds its own copy
  const classes = model.numClasses;
  const labels = Array.from({ length: classes }, (_, i) => labelOf(i, classes, run?.classNames).label);
  const spec = {
    name,
    version: '1',
    input: { name: model.graph.inputs[0]!, shape: [model.inChans, ...model.inputSize] as [number, number, number] },
    output: { name: 'logits', classes },
    maxBatch,
    labels,
    mean: preprocess.mean,
    std: preprocess.std,
  };
  const info = {
    architecture: model.name,
    family: model.entry.family,
    source: model.entry.source,
    weights: weights ?? (v['random-weights'] ? 'random' : `${model.name}.${model.cfg.tag}`),
    precision,
    classify: `/v2/models/${name}/classify`,
    browser_models: Object.fromEntries(Object.keys(onnxFiles).map((p) => [p, `/onnx/${encodeURIComponent(name)}/${p}.onnx`])),
    labels,
  };
  const wnids = classes === 1000 && !run?.classNames ? imagenetClasses().map((c) => c.wnid) : undefined;
  return { model: { spec, preprocess, onnxFiles, info, ...(wnids ? { wnids } : {}) }, path };
}

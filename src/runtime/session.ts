/** ONNX Runtime (onnxruntime-node) sessions: CPU by default, threads = cores, graph optimization 'all' by default. */
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { deviceError, executionProviders, resolveDevice, unavailableReason, warnCpuFallback, type DeviceOptions } from './device.js';
import { InputError, type HostTensor } from '../weights/tensor.js';

export type Optimization = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions extends DeviceOptions {
  /** Intra-op threads of the CPU EP (on a GPU device: for the nodes it leaves to the CPU). */
  threads?: number;
  optimization?: Optimization;
  /** Write ONNX Runtime's optimized graph here (to see which fusions and layouts it chose). */
  optimizedModelPath?: string;
  /**
   * false: idle intra-op threads sleep instead of spinning (ORT's session.intra_op.allow_spinning = 0), leaving
   * the cores to other threads of the process (a server's HTTP thread); default: ORT's (spinning).
   */
  spinning?: boolean;
}

export type Session = ort.InferenceSession;

/**
 * ONNX Runtime's own log (coloured `[W:onnxruntime:...]` lines on stderr) is off below errors: its warnings are
 * about graph rewrites we chose, not actionable for a user. TSIMM_ORT_LOG=verbose|info|warning brings them back.
 */
const ORT_LOG_LEVELS = { verbose: 0, info: 1, warning: 2, error: 3, fatal: 4 } as const;
type OrtLogLevel = keyof typeof ORT_LOG_LEVELS;
const ortLog: OrtLogLevel = (process.env['TSIMM_ORT_LOG'] as OrtLogLevel | undefined) ?? 'error';
if (ortLog in ORT_LOG_LEVELS) ort.env.logLevel = ortLog;

export function sessionOptions(o: SessionOptions = {}): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: o.threads ?? availableParallelism(),
    interOpNumThreads: 1,
    graphOptimizationLevel: o.optimization ?? 'all',
    executionMode: 'sequential',
    logSeverityLevel: ORT_LOG_LEVELS[ortLog] ?? 3,
  };
  if (o.optimizedModelPath) opts.optimizedModelFilePath = o.optimizedModelPath;
  if (o.spinning === false) opts.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  // Only a device named here: TSIMM_DEVICE is createSession's default, not that of every caller (the trainer).
  if (o.device && resolveDevice(o.device) !== 'cpu') opts.executionProviders = executionProviders(o.device);
  return opts;
}

const open = (model: Uint8Array | string, opts: ort.InferenceSession.SessionOptions) =>
  typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);

/**
 * A session from ONNX bytes, or from a file path (required when weights are in an external data file), on
 * `o.device`. A device that cannot run it is a one-line InputError with the fix, or, with `allowCpuFallback`,
 * one stderr warning and a CPU session.
 */
export async function createSession(model: Uint8Array | string, o: SessionOptions = {}): Promise<Session> {
  const device = resolveDevice(o.device);
  const cpu = () => open(model, sessionOptions({ ...o, device: 'cpu' }));
  const unavailable = unavailableReason(device);
  if (unavailable) {
    if (!o.allowCpuFallback) throw new InputError(unavailable);
    warnCpuFallback(unavailable);
    return cpu();
  }
  try {
    return await open(model, sessionOptions({ ...o, device }));
  } catch (e) {
    const err = deviceError(device, e);
    if (!err) throw e;
    if (!o.allowCpuFallback) throw err;
    warnCpuFallback(err.message);
    return cpu();
  }
}

/** Run one float32 NCHW batch; returns the requested outputs (default: all) as host tensors. */
export async function runSession(session: Session, input: HostTensor, outputs?: string[]): Promise<Record<string, HostTensor>> {
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input.data, input.shape) };
  const result = await session.run(feeds, outputs ?? session.outputNames);
  const out: Record<string, HostTensor> = {};
  for (const [k, v] of Object.entries(result)) out[k] = { shape: [...v.dims], data: v.data as Float32Array };
  return out;
}

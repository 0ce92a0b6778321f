/**
 * `tsimm quantize`: calibrate activation ranges on real images with the float model, then emit the QDQ int8
 * ONNX model. `checkInt8` measures what quantization cost on other images: top-1 agreement and the largest
 * logit error against fp32.
 */
import { PreprocessPool } from '../data/pool.js';
import { resolvePreprocess, type PreprocessOverrides } from '../data/preprocess.js';
import type { Model } from '../model.js';
import { buildOnnx, concatChunks, lowerGraph } from '../onnx/export.js';
import { Calibrator, quantizedTensors, quantizeLowered, type CalibrationMethod, type Range } from '../onnx/quantize.js';
import { createSession, runSession, type Session } from '../runtime/session.js';
import type { HostTensor } from '../weights/tensor.js';
import { InputError } from '../weights/tensor.js';
import { topk } from '../math.js';
import { preprocessBatches } from './classify.js';

/** Batches of preprocessed images (the model's own pipeline), for calibration or checks. */
export async function* imageBatches(model: Model, files: string[], batchSize = 8, overrides: PreprocessOverrides = {}): AsyncGenerator<HostTensor> {
  const config = resolvePreprocess(model.cfg, { size: model.inputSize, ...overrides });
  const pool = new PreprocessPool();
  try {
    for await (const b of preprocessBatches(files, config, batchSize, pool)) {
      if (b.files.length) yield { shape: [b.files.length, 3, ...config.size], data: b.data };
    }
  } finally {
    await pool.close();
  }
}

/** The model's weights, or the same error as running a model without them. */
function weightsOf(model: Model) {
  if (!model.weights) throw new InputError(`${model.name} has no weights: load them (model.loadSafetensors(FILE), model.loadCheckpoint(FILE), or createModel(name, { pretrained: true })), or call model.initWeights() to use random weights on purpose`);
  return model.weights;
}

export async function calibrate(model: Model, batches: AsyncIterable<HostTensor> | Iterable<HostTensor>, method: CalibrationMethod = 'minmax'): Promise<Map<string, Range>> {
  const graph = model.graph;
  const lowered = lowerGraph(graph, weightsOf(model), true);
  const tensors = quantizedTensors(lowered, graph);
  const internal = tensors.filter((t) => !graph.inputs.includes(t) && !graph.outputs.includes(t));
  const m = buildOnnx(graph, model.weights!, { outputs: graph.outputs, extraOutputs: internal });
  const session = await createSession(concatChunks(m.chunks, m.byteLength));
  const cal = new Calibrator(method);
  let seen = 0;
  try {
    for await (const x of batches) {
      const out = await runSession(session, x);
      for (const t of tensors) cal.observe(t, graph.inputs.includes(t) ? x.data : out[t]!.data);
      seen += x.shape[0]!;
    }
  } finally {
    await session.release();
  }
  if (!seen) throw new InputError('no calibration images could be read');
  return cal.ranges();
}

/** QDQ int8 ONNX bytes for `model` (weights loaded) with calibrated `ranges`. */
export function int8Onnx(model: Model, ranges: Map<string, Range>): Uint8Array {
  const m = buildOnnx(model.graph, weightsOf(model), { metadata: { ...model.metadata(), 'tsimm.precision': 'int8' }, outputs: model.graph.outputs.filter((o) => o === 'logits' || o.startsWith('feature')), transform: (l) => quantizeLowered(l, model.graph, ranges) });
  return concatChunks(m.chunks, m.byteLength);
}

export interface Int8Check {
  images: number;
  top1Agreement: number;
  maxLogitError: number;
  /** Relative to the largest fp32 logit magnitude. */
  maxLogitErrorRel: number;
}

/** Compare an int8 session with the fp32 one on batches the calibration did not see. */
export async function checkInt8(model: Model, int8: Session, batches: AsyncIterable<HostTensor>): Promise<Int8Check> {
  const fp32 = await model.createSession();
  let n = 0;
  let agree = 0;
  let maxErr = 0;
  let maxRef = 0;
  try {
    for await (const x of batches) {
      const a = (await runSession(fp32, x, ['logits']))['logits']!;
      const b = (await runSession(int8, x, ['logits']))['logits']!;
      const classes = a.shape[1]!;
      for (let i = 0; i < x.shape[0]!; i++) {
        const ra = a.data.subarray(i * classes, (i + 1) * classes);
        const rb = b.data.subarray(i * classes, (i + 1) * classes);
        if (topk(ra, 1)[0] === topk(rb, 1)[0]) agree++;
        for (let j = 0; j < classes; j++) {
          maxErr = Math.max(maxErr, Math.abs(ra[j]! - rb[j]!));
          maxRef = Math.max(maxRef, Math.abs(ra[j]!));
        }
        n++;
      }
    }
  } finally {
    await fp32.release();
  }
  return { images: n, top1Agreement: n ? agree / n : 0, maxLogitError: maxErr, maxLogitErrorRel: maxErr / Math.max(1, maxRef) };
}

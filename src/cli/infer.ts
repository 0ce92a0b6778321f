/**
 * `tsimm infer` and `tsimm preprocess`: the tensors of a model run written as .npy, to diff against another
 * pipeline: the logits (or features) of an NCHW batch, and the input tensor an image becomes.
 */
import { preprocessImage, resolvePreprocess } from '../data/preprocess.js';
import { createModel } from '../model.js';
import { resolveModel } from '../models/index.js';
import { readNpy, writeNpy } from '../node/npy.js';
import { InputError } from '../weights/tensor.js';
import { int, log, required, str, UsageError, type Command } from './args.js';
import { DEVICE_OPTIONS, deviceFrom } from './device.js';
import { WEIGHT_OPTIONS } from './model-args.js';
import { checkInputFile, checkOutputFile } from './paths.js';
import { oneName, PREPROCESS_OPTIONS, preprocessFlags, sizeOpt, weightsRun, withWeights } from './options.js';

export const infer: Command = {
  usage: 'NAME[.TAG] --input X.npy --output Y.npy [--weights FILE] [--features]',
  summary: 'Run a model on a float32 NCHW .npy batch and write the logits (or pooled features) as .npy.',
  options: {
    ...WEIGHT_OPTIONS,
    input: { type: 'string', short: 'i', arg: 'X.npy', help: 'float32 [N, 3, H, W] input (any H, W the model accepts)' },
    output: { type: 'string', short: 'o', arg: 'Y.npy', help: 'where to write the [N, classes] logits' },
    features: { type: 'boolean', help: 'write the pooled pre-logits features instead of the logits' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime intra-op threads (default: all cores)' },
    ...DEVICE_OPTIONS,
  },
  async run(p, v) {
    const name = oneName(p);
    const input = readNpy(checkInputFile(required(v, 'input', 'the .npy batch to run'), '--input'));
    const output = checkOutputFile(required(v, 'output', 'the .npy file to write'), '--output', 'logits.npy');
    if (input.shape.length !== 4) throw new InputError(`${str(v, 'input')} has shape (${input.shape.join(', ')}); infer needs a 4-D float32 NCHW batch [N, 3, H, W]`);
    const [, ch, h, w] = input.shape as [number, number, number, number];
    if (ch !== 3) {
      const nhwc = w === 3 || w === 1 || w === 4;
      throw new InputError(
        `${str(v, 'input')} has shape (${input.shape.join(', ')}); infer needs a float32 NCHW batch [N, 3, H, W]${nhwc ? `: this looks NHWC — transpose it to NCHW first (numpy: x.transpose(0, 3, 1, 2), giving (${[input.shape[0], w, ch, h].join(', ')}))` : ''}`,
      );
    }
    const run = weightsRun(name, v);
    const model = createModel(name, { inputSize: [h, w], ...(run ? { numClasses: run.numClasses } : {}) });
    await withWeights(model, v, true);
    log(`running ${model.name} on [${input.shape.join(', ')}]`);
    // One-shot: the weights are let go once in the session's file (peak RSS about ONNX Runtime's own).
    const session = await model.createSession({ threads: int(v, 'threads'), releaseWeights: true, ...deviceFrom(v) });
    try {
      const result = await model.run(input, session);
      writeNpy(output, v['features'] ? result.features : result.logits);
    } finally {
      await session.release();
    }
    return 0;
  },
};

export const preprocessCmd: Command = {
  usage: 'IMAGE --model NAME -o X.npy [preprocessing flags]',
  summary: 'Write the exact float32 [1, 3, H, W] tensor the model would see, to diff against another pipeline.',
  options: {
    model: { type: 'string', short: 'm', arg: 'NAME', help: 'whose preprocessing to use' },
    output: { type: 'string', short: 'o', arg: 'X.npy', help: 'output file' },
    ...PREPROCESS_OPTIONS,
  },
  async run(p, v) {
    if (p.length !== 1) throw new UsageError('expected one image');
    const { cfg } = resolveModel(required(v, 'model', 'the model decides the pipeline'));
    const size = sizeOpt(v);
    const config = resolvePreprocess(cfg, { ...preprocessFlags(v), ...(size ? { size } : {}) });
    const output = checkOutputFile(required(v, 'output', 'where to write the tensor'), '--output', 'x.npy');
    const data = await preprocessImage(p[0]!, config);
    writeNpy(output, { shape: [1, 3, ...config.size], data });
    return 0;
  },
};

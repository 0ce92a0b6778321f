/** `tsimm quantize`: a model quantized to int8 (QDQ) on calibration images, optionally checked against fp32. */
import { createModel } from '../model.js';
import { writeChunksAtomic } from '../node/files.js';
import { createSession } from '../runtime/session.js';
import { calibrate, checkInt8, imageBatches, int8Onnx } from '../tasks/quantize.js';
import { oneOf, required, str, type Command } from './args.js';
import { DEVICE_OPTIONS, deviceFrom } from './device.js';
import { imagesIn, runPreprocess, WEIGHT_OPTIONS } from './model-args.js';
import { checkOutputFile } from './paths.js';
import { json, oneName, out, sizeOpt, weightsRun, withWeights } from './options.js';

export const quantize: Command = {
  usage: 'MODEL --calib DIR -o MODEL.int8.onnx [--method minmax|percentile] [--check DIR]',
  summary: 'Static int8 quantization (QDQ: per-channel int8 weights, uint8 activations calibrated on real images).',
  options: {
    calib: { type: 'string', arg: 'DIR', help: 'calibration images (a few hundred is typical)' },
    output: { type: 'string', short: 'o', arg: 'FILE.onnx', help: 'output file' },
    method: { type: 'string', arg: 'minmax|percentile', help: 'activation range rule (default minmax)' },
    check: { type: 'string', arg: 'DIR', help: 'images disjoint from the calibration set: report top-1 agreement and max logit error vs fp32' },
    size: { type: 'string', arg: 'N', help: 'input size (default: the pretrained config)' },
    ...WEIGHT_OPTIONS,
    ...DEVICE_OPTIONS,
    json: { type: 'boolean', help: 'print JSON' },
  },
  async run(p, v) {
    const output = checkOutputFile(required(v, 'output', 'where to write the int8 model'), '--output', `${p[0]}.int8.onnx`);
    const method = oneOf(v, 'method', ['minmax', 'percentile'] as const) ?? 'minmax';
    const name = oneName(p);
    const run = weightsRun(name, v);
    const model = createModel(name, { inputSize: sizeOpt(v) ?? run?.size, ...(run ? { numClasses: run.numClasses, inChans: run.inChans } : {}) });
    await withWeights(model, v, true);
    const ranges = await calibrate(model, imageBatches(model, imagesIn(required(v, 'calib', 'calibration images decide the activation ranges')), 8, runPreprocess(run)), method);
    const bytes = int8Onnx(model, ranges);
    writeChunksAtomic(output, [bytes]);
    const checkDir = str(v, 'check');
    const check = checkDir ? await checkInt8(model, await createSession(bytes, deviceFrom(v)), imageBatches(model, imagesIn(checkDir), 8, runPreprocess(run))) : undefined;
    if (v['json']) out(json({ output, bytes: bytes.byteLength, method, check }));
    else {
      out(`${output}: ${(bytes.byteLength / 1e6).toFixed(1)} MB int8 (${method} calibration)`);
      if (check) out(`check on ${check.images} images: top-1 agreement ${(100 * check.top1Agreement).toFixed(1)}%, max logit error ${check.maxLogitError.toFixed(4)} (${(100 * check.maxLogitErrorRel).toFixed(2)}% of the largest logit)`);
    }
    return 0;
  },
};

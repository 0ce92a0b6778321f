/**
 * `tsimm grad`: one training step's loss, logits, gradients and BatchNorm statistics, written as files to diff
 * against any reference (PyTorch, timm), as `infer` does for logits. The grad fixtures are checked through it.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createModel } from '../model.js';
import type { KeyScheme } from '../models/types.js';
import { checkpointHeadWidth } from '../node/checkpoint.js';
import { Trainer } from '../train/trainer.js';
import { readNpy, writeNpy } from '../node/npy.js';
import { saveSafetensors } from '../node/safetensors.js';
import { InputError, type HostTensor } from '../weights/tensor.js';
import { int, numbers, required, str, UsageError, type Command } from './args.js';
import { weightsPath } from './paths.js';

/** The classifier width a checkpoint was trained with (a fine-tuned model has its own), if it has a classifier. */
export function checkpointClasses(name: string, file: string, scheme?: KeyScheme): number | undefined {
  const probe = createModel(name);
  return checkpointHeadWidth(probe.fullGraph, probe.cfg.classifier, file, scheme);
}

export const grad: Command = {
  usage: 'MODEL --input X.npy --targets 3,7 -o DIR [--weights FILE] [--num-classes C] [--batch-norm train|frozen] [--label-smoothing E] [--sgd LR,MOMENTUM,WD]',
  summary: "One training step's loss, logits and every parameter's gradient, written to compare with a reference.",
  options: {
    weights: { type: 'string', arg: 'FILE', help: 'checkpoint (.safetensors, .pth, .pdparams); default the pretrained weights' },
    input: { type: 'string', short: 'i', arg: 'X.npy', help: 'float32 [N, 3, H, W] batch' },
    targets: { type: 'string', arg: 'I,J,...', help: 'one class index per sample' },
    'num-classes': { type: 'string', arg: 'C', help: 'classifier width (default: the checkpoint\'s, else 1000)' },
    'batch-norm': { type: 'string', arg: 'train|frozen', help: 'batch statistics (default) or running statistics' },
    'label-smoothing': { type: 'string', arg: 'E', help: 'cross-entropy label smoothing (default 0)' },
    sgd: { type: 'string', arg: 'LR,MOMENTUM,WD', help: 'take one SGD step (decay on rank ≥ 2 tensors) and report the loss of a second forward' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime intra-op threads (default: all cores)' },
    output: { type: 'string', short: 'o', arg: 'DIR', help: 'writes grads.safetensors, logits.npy, bn_after.safetensors, result.json' },
    json: { type: 'boolean', help: 'print result.json on stdout' },
  },
  async run(p, v) {
    if (p.length !== 1) throw new UsageError('give exactly one model name');
    const inputPath = required(v, 'input', 'the .npy batch');
    if (!existsSync(inputPath)) throw new InputError(`--input ${inputPath} does not exist`);
    const input = readNpy(inputPath);
    if (input.shape.length !== 4 || input.shape[1] !== 3) throw new InputError(`${inputPath} has shape (${input.shape.join(', ')}); grad needs a float32 NCHW batch [N, 3, H, W]`);
    const targets = numbers(v, 'targets');
    if (!targets) throw new UsageError('--targets is required: one class index per sample');
    if (targets.length !== input.shape[0]) throw new InputError(`--targets has ${targets.length} indices for a batch of ${input.shape[0]}`);
    const out = resolve(required(v, 'output', 'the directory to write'));
    if (existsSync(out) && !statSync(out).isDirectory()) throw new InputError(`-o ${out} is a file; give a directory`);
    if (!existsSync(dirname(out))) throw new InputError(`-o ${out}: the parent directory ${dirname(out)} does not exist`);
    const mode = str(v, 'batch-norm') ?? 'train';
    if (mode !== 'train' && mode !== 'frozen') throw new UsageError(`--batch-norm must be train or frozen, got "${mode}"`);
    const smoothing = numbers(v, 'label-smoothing', 1)?.[0] ?? 0;
    const sgd = numbers(v, 'sgd', 3);

    const [, , h, w] = input.shape as [number, number, number, number];
    const given = str(v, 'weights');
    const file = given === undefined ? undefined : weightsPath(given);
    const numClasses = int(v, 'num-classes') ?? (file ? checkpointClasses(p[0]!, file) : undefined);
    const model = createModel(p[0]!, { inputSize: [h, w], ...(numClasses ? { numClasses } : {}) });
    if (file) {
      model.newHeadAllowed = false; // gradients of a random classifier compare with nothing: --num-classes must fit
      model.loadCheckpoint(file);
    } else await model.loadPretrained();
    const [lr, momentum, weightDecay] = (sgd ?? [0, 0, 0]) as [number, number, number];
    const trainer = new Trainer(model.fullGraph, model.weights!, { batchNorm: mode, labelSmoothing: smoothing, optimizer: 'sgd', lr, momentum, weightDecay, threads: int(v, 'threads') });
    try {
      const fb = await trainer.forwardBackward(input, targets);
      if (mode === 'train') trainer.engine.updateRunningStats(fb, input.shape[0]!);
      const grads = new Map<string, HostTensor>([...fb.grads].map(([k, g]) => [k, { shape: trainer.graph.paramShapes[k]!, data: g }]));
      const bn = new Map<string, HostTensor>();
      for (const prm of model.fullGraph.paramList()) {
        if (prm.role === 'bn_mean' || prm.role === 'bn_var') bn.set(prm.name, { shape: prm.shape, data: model.weights!.get(prm.name)! });
      }
      const result: Record<string, unknown> = { model: model.name, batch_norm: mode, label_smoothing: smoothing, loss: fb.loss, losses: [...fb.losses] };
      if (sgd) {
        trainer.engine.optimizer.update(model.weights!, fb.grads, lr);
        // The second forward must not move the running statistics again: they were written above.
        result['loss_after_sgd_step'] = (await trainer.forwardBackward(input, targets)).loss;
        result['sgd'] = { lr, momentum, weight_decay: weightDecay };
      }
      // Everything goes to a temporary directory first, then moves into place.
      const tmp = `${out}.tmp-${process.pid}`;
      mkdirSync(tmp, { recursive: true });
      try {
        saveSafetensors(join(tmp, 'grads.safetensors'), grads);
        saveSafetensors(join(tmp, 'bn_after.safetensors'), bn);
        writeNpy(join(tmp, 'logits.npy'), { shape: [input.shape[0]!, trainer.graph.numClasses], data: fb.logits });
        writeFileSync(join(tmp, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
        mkdirSync(out, { recursive: true });
        for (const f of ['grads.safetensors', 'bn_after.safetensors', 'logits.npy', 'result.json']) renameSync(join(tmp, f), join(out, f));
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      process.stdout.write(v['json'] ? `${JSON.stringify(result)}\n` : `loss ${fb.loss}${sgd ? `, after one SGD step ${result['loss_after_sgd_step']}` : ''}\n${out}\n`);
    } finally {
      await trainer.release();
    }
    return 0;
  },
};

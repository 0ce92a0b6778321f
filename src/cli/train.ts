/**
 * `tsimm train`: fine-tune or train a zoo model on an ImageFolder tree, a CSV/TSV list or IDX files, with timm's
 * recipe options (names as timm's train.py where it has them). Epoch results on stdout, a progress bar on stderr
 * (TTY only); Ctrl-C saves a resumable state and exits 130.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openDataset, valSplit, checkSameClasses, type TrainDataset } from '../data/datasets.js';
import { DataLoader, evalTransform, siblingModule, type TransformSpec } from '../data/loader.js';
import { resolvePreprocess } from '../data/preprocess.js';
import { createModel, type Model } from '../model.js';
import { resolveModel } from '../models/index.js';
import { fit, loaderSource, type EpochRecord, type StepInfo } from '../train/fit.js';
import { timmInit } from '../train/init.js';
import type { TrainerOptions } from '../train/trainer.js';
import { InputError } from '../weights/tensor.js';
import { int, num, numbers, oneOf, str, UsageError, type Command, type Values } from './args.js';

/** A bar on a terminal; otherwise a plain line every `every` batches (timm's --log-interval), or nothing. */
function progress(s: StepInfo, epochs: number, every?: number): void {
  const eta = s.batchesDone > 0 ? Math.round((s.elapsed / s.batchesDone) * (s.batches - s.batch)) : 0;
  const clock = `${Math.floor(eta / 60)}:${String(eta % 60).padStart(2, '0')}`;
  if (!process.stderr.isTTY) {
    if (every && (s.batch % every === 0 || s.batch === s.batches)) {
      process.stderr.write(`epoch ${s.epoch + 1}/${epochs} batch ${s.batch}/${s.batches} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)} ${s.imagesPerSecond.toFixed(1)} img/s ETA ${clock}\n`);
    }
    return;
  }
  const width = 24;
  const done = Math.round((s.batch / s.batches) * width);
  process.stderr.write(`\repoch ${s.epoch + 1}/${epochs} [${'#'.repeat(done)}${'.'.repeat(width - done)}] ${s.batch}/${s.batches} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)} ${s.imagesPerSecond.toFixed(1)} img/s ETA ${clock} `);
}

function epochLine(r: EpochRecord): string {
  const ev = r.eval_top1 !== undefined ? ` eval_loss ${r.eval_loss!.toFixed(4)} top1 ${r.eval_top1.toFixed(2)} top5 ${r.eval_top5!.toFixed(2)}` : '';
  const ema = r.ema_top1 !== undefined ? ` ema_top1 ${r.ema_top1.toFixed(2)}` : '';
  const kd = r.train_loss_kd !== undefined ? ` (ce ${r.train_loss_ce!.toFixed(4)} kd ${r.train_loss_kd.toFixed(4)})` : '';
  return `epoch ${r.epoch} train_loss ${r.train_loss.toFixed(4)}${kd}${ev}${ema} lr ${r.lr.toExponential(3)} ${r.images_per_second.toFixed(1)} img/s`;
}

export const train: Command = {
  usage: 'MODEL --data PATH --output DIR [--val PATH | --val-split F] [--pretrained | --weights FILE] [--epochs N] [--batch-size N] [--lr LR] [--freeze head|PREFIX...] [--resume]',
  summary: "Fine-tune or train a model on your images (ImageFolder, CSV/TSV list, IDX) with timm's and PaddleClas' recipes.",
  options: {
    data: { type: 'string', arg: 'PATH', help: 'training data: a folder per class, a path,label CSV/TSV, or a folder of IDX files (MNIST/Fashion-MNIST)' },
    val: { type: 'string', arg: 'PATH', help: 'validation data (same layouts and classes)' },
    'val-split': { type: 'string', arg: 'F', help: 'hold out this fraction of --data for validation (stratified, by --seed)' },
    output: { type: 'string', short: 'o', arg: 'DIR', help: 'run directory: last/best.safetensors, config.json, state, log.jsonl, summary.csv' },
    resume: { type: 'boolean', help: 'continue the run in --output from where it stopped' },
    pretrained: { type: 'boolean', help: "start from the registry's pretrained weights (new classifier for your classes)" },
    weights: { type: 'string', arg: 'FILE', help: 'start from a checkpoint (.safetensors, .pth, .pdparams)' },
    epochs: { type: 'string', arg: 'N', help: 'epochs (default 10)' },
    'batch-size': { type: 'string', short: 'b', arg: 'N', help: 'batch size (default 32)' },
    size: { type: 'string', arg: 'N', help: 'training and evaluation resolution (default: the model\'s)' },
    'in-chans': { type: 'string', arg: '1|3', help: 'grayscale data: 3 replicates the channel (default), 1 builds the model with one input channel' },
    opt: { type: 'string', arg: 'sgd|adamw', help: 'optimizer (default sgd)' },
    lr: { type: 'string', arg: 'LR', help: 'base learning rate (default 0.01)' },
    momentum: { type: 'string', arg: 'M', help: 'SGD momentum (default 0.9)' },
    nesterov: { type: 'boolean', help: 'Nesterov momentum' },
    'weight-decay': { type: 'string', arg: 'WD', help: 'weight decay, not on biases and norms (default 2e-5)' },
    'label-smoothing': { type: 'string', arg: 'E', help: 'label smoothing (default 0.1)' },
    sched: { type: 'string', arg: 'cosine|step|constant', help: 'learning-rate schedule, stepped per update (default cosine)' },
    'warmup-epochs': { type: 'string', arg: 'N', help: 'linear warmup epochs (default 0)' },
    'warmup-lr': { type: 'string', arg: 'LR', help: 'warmup start (default 1e-5)' },
    'min-lr': { type: 'string', arg: 'LR', help: 'cosine floor (default 0)' },
    'decay-epochs': { type: 'string', arg: 'N', help: 'step schedule period in epochs (default 30)' },
    'decay-rate': { type: 'string', arg: 'R', help: 'step schedule factor (default 0.1)' },
    mixup: { type: 'string', arg: 'ALPHA', help: 'mixup alpha (0 = off)' },
    cutmix: { type: 'string', arg: 'ALPHA', help: 'cutmix alpha (0 = off)' },
    'mixup-prob': { type: 'string', arg: 'P', help: 'probability of mixing a batch (default 1)' },
    'mixup-switch-prob': { type: 'string', arg: 'P', help: 'probability of cutmix when both are on (default 0.5)' },
    aa: { type: 'string', arg: 'POLICY', help: "RandAugment policy, e.g. rand-m9-mstd0.5 (default none)" },
    'color-jitter': { type: 'string', arg: 'F', help: 'color jitter strength (default 0.4)' },
    hflip: { type: 'string', arg: 'P', help: 'horizontal flip probability (default 0.5)' },
    scale: { type: 'string', arg: 'MIN,MAX', help: 'RandomResizedCrop area range (default 0.08,1)' },
    ratio: { type: 'string', arg: 'MIN,MAX', help: 'RandomResizedCrop aspect range (default 0.75,1.333)' },
    reprob: { type: 'string', arg: 'P', help: 'random erasing probability (default 0)' },
    'no-aug': { type: 'boolean', help: 'no augmentation: train on the evaluation transform' },
    'model-ema': { type: 'boolean', help: 'keep an EMA of weights and buffers, evaluated beside the model' },
    'model-ema-decay': { type: 'string', arg: 'D', help: 'EMA decay (default 0.9998)' },
    freeze: { type: 'string', multiple: true, arg: 'head|PREFIX', help: "'head': train only the classifier (PaddleClas Fix); else freeze these module prefixes" },
    'batch-norm': { type: 'string', arg: 'train|frozen', help: 'BatchNorm mode (default train)' },
    teacher: { type: 'string', arg: 'NAME', help: 'distill from this model (same classes)' },
    'teacher-weights': { type: 'string', arg: 'FILE', help: "the teacher's checkpoint" },
    distill: { type: 'string', arg: 'kl|dml', help: 'distillation loss (default kl)' },
    temperature: { type: 'string', arg: 'T', help: 'KL temperature (default 1)' },
    'distill-alpha': { type: 'string', arg: 'A', help: 'loss = (1 − A)·CE + A·KD (default 0.5)' },
    'grad-accum': { type: 'string', arg: 'N', help: 'accumulate gradients over N batches' },
    'clip-grad': { type: 'string', arg: 'NORM', help: 'clip the global gradient norm' },
    'layer-decay': { type: 'string', arg: 'F', help: 'layer-wise learning-rate decay (timm)' },
    'checkpoint-hist': { type: 'string', arg: 'N', help: 'keep the last N epoch checkpoints' },
    seed: { type: 'string', arg: 'N', help: 'random seed (default 42): data order, augmentation, mixup, init' },
    workers: { type: 'string', short: 'j', arg: 'N', help: 'decode/augment worker threads (default: cores − 1)' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime intra-op threads (default: all cores)' },
    limit: { type: 'string', arg: 'N', help: 'use only the first N training (and validation) samples' },
    'log-interval': { type: 'string', arg: 'N', help: 'off a terminal, print a progress line every N batches on stderr' },
    json: { type: 'boolean', help: 'print the run summary as JSON' },
  },
  async run(p, v) {
    if (p.length !== 1) throw new UsageError('give exactly one model name');
    const name = p[0]!;
    const output = str(v, 'output');
    if (!output) throw new UsageError('--output DIR is required: where the run is written');
    const out = resolve(output);
    if (existsSync(out) && !statSync(out).isDirectory()) throw new InputError(`--output ${out} is a file; give a directory`);
    const resume = Boolean(v['resume']);
    const saved = resume && existsSync(join(out, 'config.json')) ? (JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { args?: Values }) : undefined;
    if (resume && !saved) throw new InputError(`nothing to resume in ${out}: config.json is missing`);
    // A resumed run takes the recorded options; flags given now override them.
    const a: Values = { ...(saved?.args ?? {}), ...v, resume: resume };
    const dataPath = str(a, 'data');
    if (!dataPath) throw new UsageError('--data PATH is required: a folder per class, a CSV/TSV list, or IDX files');
    const limit = int(a, 'limit');
    const seed = int(a, 'seed', 0) ?? 42;
    const trainAll = await openDataset(dataPath, { limit });
    let trainSet: TrainDataset = trainAll;
    let valSet: TrainDataset | undefined;
    const valPath = str(a, 'val');
    if (valPath) {
      // The same IDX folder as --data means its test split (t10k files).
      const split = resolve(valPath) === resolve(dataPath) && trainAll.kind === 'idx' ? { split: 'test' as const } : {};
      valSet = await openDataset(valPath, { limit, classes: trainAll.classes, ...split });
      checkSameClasses(trainAll, valSet);
    } else if (str(a, 'val-split') !== undefined) {
      const f = num(a, 'val-split', 0, 0.9)!;
      ({ train: trainSet, val: valSet } = valSplit(trainAll, f, seed));
    }
    if (trainSet.length === 0) throw new InputError(`${dataPath} holds no training samples`);

    const { cfg, entry } = resolveModel(name);
    const inChans = int(a, 'in-chans') ?? 3;
    if (inChans !== 1 && inChans !== 3) throw new UsageError('--in-chans must be 1 or 3');
    const size = int(a, 'size') ?? cfg.inputSize[1];
    const model: Model = createModel(name, { numClasses: trainSet.numClasses, inChans, inputSize: size });
    const weights = str(a, 'weights');
    if (resume) model.weights = timmInit(model.fullGraph, entry.family, seed); // replaced by last.safetensors
    else if (weights) model.loadCheckpoint(weights);
    else if (a['pretrained']) await model.loadPretrained();
    else model.weights = timmInit(model.fullGraph, entry.family, seed);

    const pre = resolvePreprocess(model.cfg, { size });
    const batchSize = int(a, 'batch-size') ?? 32;
    const workers = int(a, 'workers', 0);
    const trainTransform: TransformSpec = a['no-aug']
      ? evalTransform(pre, { channels: inChans as 1 | 3 })
      : {
          module: siblingModule(import.meta.url, '../data/train-transform'),
          config: {
            seed,
            channels: inChans,
            size: [size, size],
            interpolation: pre.interpolation,
            mean: pre.mean,
            std: pre.std,
            scale: (numbers(a, 'scale', 2) as [number, number] | undefined) ?? [0.08, 1],
            ratio: (numbers(a, 'ratio', 2) as [number, number] | undefined) ?? [3 / 4, 4 / 3],
            hflip: num(a, 'hflip', 0, 1) ?? 0.5,
            colorJitter: num(a, 'color-jitter', 0) ?? 0.4,
            autoAugment: str(a, 'aa'),
            reprob: num(a, 'reprob', 0, 1) ?? 0,
          },
        };
    const shape: [number, number, number] = [inChans, size, size];
    const trainLoader = new DataLoader(trainSet, { batchSize, shape, transform: trainTransform, seed, dropLast: true, ...(workers !== undefined ? { workers } : {}) });
    const valLoader = valSet ? new DataLoader(valSet, { batchSize, shape, transform: evalTransform(pre, { channels: inChans as 1 | 3 }), shuffle: false, ...(workers !== undefined ? { workers } : {}) }) : undefined;
    if (trainLoader.batchesPerEpoch === 0) throw new InputError(`--batch-size ${batchSize} is larger than the ${trainSet.length} training samples`);

    const freeze = (a['freeze'] as string[] | undefined) ?? [];
    const distillKind = str(a, 'teacher') ? (oneOf(a, 'distill', ['kl', 'dml'] as const) ?? 'kl') : undefined;
    const topt: TrainerOptions = {
      optimizer: oneOf(a, 'opt', ['sgd', 'adamw'] as const) ?? 'sgd',
      lr: num(a, 'lr', 0) ?? 0.01,
      momentum: num(a, 'momentum', 0, 1) ?? 0.9,
      nesterov: Boolean(a['nesterov']),
      weightDecay: num(a, 'weight-decay', 0) ?? 2e-5,
      labelSmoothing: num(a, 'label-smoothing', 0, 1) ?? 0.1,
      batchNorm: oneOf(a, 'batch-norm', ['train', 'frozen'] as const) ?? 'train',
      ...(freeze.includes('head') ? { trainOnly: [model.cfg.classifier, ...(model.cfg.extraClassifiers ?? [])] } : freeze.length ? { freeze } : {}),
      ...(int(a, 'grad-accum') ? { accumulate: int(a, 'grad-accum') } : {}),
      ...(num(a, 'clip-grad', 0) !== undefined ? { clipGrad: num(a, 'clip-grad', 0) } : {}),
      ...(num(a, 'layer-decay', 0, 1) !== undefined ? { layerDecay: num(a, 'layer-decay', 0, 1) } : {}),
      ...(distillKind ? { distill: { kind: distillKind, temperature: num(a, 'temperature', 0) ?? 1, alpha: num(a, 'distill-alpha', 0, 1) ?? 0.5 } } : {}),
      ...(int(a, 'threads') ? { threads: int(a, 'threads') } : {}),
    };
    let teacher: Model | undefined;
    if (str(a, 'teacher')) {
      teacher = createModel(str(a, 'teacher')!, { numClasses: trainSet.numClasses, inChans, inputSize: size });
      const tw = str(a, 'teacher-weights');
      if (!tw) throw new UsageError('--teacher needs --teacher-weights FILE (a checkpoint trained on the same classes)');
      teacher.loadCheckpoint(tw);
    }

    const ctl = new AbortController();
    const onSigint = () => ctl.abort();
    process.once('SIGINT', onSigint);
    const epochs = int(a, 'epochs') ?? 10;
    let result;
    try {
      result = await fit({
        model,
        train: loaderSource(trainLoader, batchSize),
        ...(valLoader ? { val: loaderSource(valLoader, batchSize) } : {}),
        epochs,
        trainer: topt,
        schedule: {
          kind: oneOf(a, 'sched', ['cosine', 'step', 'constant'] as const) ?? 'cosine',
          warmupEpochs: num(a, 'warmup-epochs', 0) ?? 0,
          warmupLr: num(a, 'warmup-lr', 0) ?? 1e-5,
          minLr: num(a, 'min-lr', 0) ?? 0,
          decayEvery: Math.round((num(a, 'decay-epochs', 0) ?? 30) * Math.max(1, trainLoader.batchesPerEpoch)),
          decayRate: num(a, 'decay-rate', 0) ?? 0.1,
        },
        ...((num(a, 'mixup', 0) ?? 0) > 0 || (num(a, 'cutmix', 0) ?? 0) > 0
          ? { mixup: { mixupAlpha: num(a, 'mixup', 0) ?? 0, cutmixAlpha: num(a, 'cutmix', 0) ?? 0, prob: num(a, 'mixup-prob', 0, 1) ?? 1, switchProb: num(a, 'mixup-switch-prob', 0, 1) ?? 0.5 } }
          : {}),
        ...(a['model-ema'] ? { ema: num(a, 'model-ema-decay', 0, 1) ?? 0.9998 } : {}),
        ...(teacher ? { teacher } : {}),
        output: out,
        resume,
        ...(int(a, 'checkpoint-hist') ? { checkpointHist: int(a, 'checkpoint-hist') } : {}),
        seed,
        config: {
          class_names: trainSet.classes,
          preprocess: pre,
          data: { train: resolve(dataPath), val: valPath ? resolve(valPath) : undefined, val_split: str(a, 'val-split'), train_samples: trainSet.length, val_samples: valSet?.length ?? 0 },
          args: Object.fromEntries(Object.entries(a).filter(([k]) => k !== 'resume' && k !== 'json')),
        },
        signal: ctl.signal,
        onStep: (s) => progress(s, epochs, int(a, 'log-interval')),
        onEpoch: (r) => {
          if (process.stderr.isTTY) process.stderr.write('\n');
          if (!a['json']) process.stdout.write(`${epochLine(r)}\n`);
        },
      });
    } finally {
      process.off('SIGINT', onSigint);
      await trainLoader.close();
      await valLoader?.close();
    }
    const skipped = trainLoader.bad.size + (valLoader?.bad.size ?? 0);
    const summary = { output: out, epochs: result.epochs, best: result.best, interrupted: result.interrupted, steps: result.steps, skipped_images: skipped, classes: trainSet.classes };
    if (a['json']) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else if (result.interrupted) process.stderr.write(`interrupted: state saved in ${out}; continue with tsimm train ${name} --output ${output} --resume\n`);
    else process.stdout.write(`${out}/best.safetensors${result.best ? ` (epoch ${result.best.epoch})` : ''}\n`);
    return result.interrupted ? 130 : 0;
  },
};

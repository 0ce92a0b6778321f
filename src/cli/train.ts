/**
 * `tsimm train`: fine-tune or train a zoo model on an ImageFolder tree, a CSV/TSV list or IDX files, with timm's
 * recipe options (names as timm's train.py where it has them). Epoch results on stdout, a progress bar on stderr
 * (TTY only); Ctrl-C saves a resumable state and exits 130.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { openDataset, valSplit, checkSameClasses, type TrainDataset } from '../data/datasets.js';
import { DataLoader, evalTransform, siblingModule, type TransformSpec } from '../data/loader.js';
import { resolvePreprocess } from '../data/preprocess.js';
import { trainRecipeDefaults } from '../data/small-image.js';
import { createModel, type Model } from '../model.js';
import { resolveModel } from '../models/index.js';
import { fit, loaderSource, type EpochRecord, type StepInfo } from '../train/fit.js';
import { timmInit } from '../train/init.js';
import { lrAt } from '../train/scheduler.js';
import { writeChunksAtomic } from '../node/files.js';
import type { TrainerOptions } from '../train/trainer.js';
import { InputError } from '../weights/tensor.js';
import { int, num, numbers, oneOf, str, UsageError, type Command, type Values } from './args.js';
import { checkpointClasses } from './grad.js';
import { weightsPath } from './paths.js';
import { dropOptions, inputSizeOpt, timmArgs, timmCaveats, toYaml, type TimmRecipe } from './timm-args.js';

/** A line the user must see whether or not stderr is a terminal (a choice made for them, a plan changed). */
const note = (message: string) => process.stderr.write(`tsimm train: note: ${message}\n`);

/** The run directory: --output, or timm's --resume PATH (a run directory, or a file in one). */
function runDir(v: Values): { out: string; output: string; resume: boolean } {
  const r = str(v, 'resume'); // undefined: a new run; '': the run in --output; else a path
  let output = str(v, 'output');
  if (r) {
    const dir = statSync(r).isDirectory() ? r : dirname(r);
    if (output && resolve(output) !== resolve(dir)) throw new UsageError(`--resume ${r} is the run in ${dir} but --output is ${output}; give one of them`);
    output = dir;
  }
  if (!output) throw new UsageError(r === undefined ? '--output DIR is required: where the run is written' : '--resume needs the run: --output DIR, or --resume DIR');
  const out = resolve(output);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new InputError(`--output ${out} is a file; give a directory`);
  return { out, output, resume: r !== undefined };
}

interface SavedRun {
  args: Values;
  /** The epochs it was planned for, and those done. */
  epochs: number;
  done: number;
  best?: { epoch: number; metric: number };
}

function readJson<T>(file: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new InputError(`${file} is not readable JSON (${(e as Error).message.split('\n')[0]}); the run cannot be resumed`);
  }
}

/** The run to resume in `out`: its recorded options, length and progress; another model's run is refused. */
function savedRun(out: string, name: string): SavedRun {
  if (!existsSync(join(out, 'config.json'))) throw new InputError(`nothing to resume in ${out}: config.json is missing`);
  const c = readJson<{ model: string; num_classes: number; args?: Values; recipe?: { epochs?: number } }>(join(out, 'config.json'));
  if (resolveModel(c.model).entry.name !== resolveModel(name).entry.name) {
    throw new InputError(`${out} holds a run of ${c.model} with ${c.num_classes} classes, not ${name}; resume it with the same model and data, or give another --output`);
  }
  if (!existsSync(join(out, 'state.json'))) throw new InputError(`nothing to resume in ${out}: state.json is missing`);
  const st = readJson<{ epoch: number; batch?: number; best?: { epoch: number; metric: number } }>(join(out, 'state.json'));
  return { args: c.args ?? {}, epochs: c.recipe?.epochs ?? (Number(c.args?.['epochs']) || 10), done: st.epoch, ...(st.best ? { best: st.best } : {}) };
}

/** --overwrite: the files a run writes, removed just before the new run writes its own (nothing else in DIR). */
function removeRun(out: string): void {
  if (!existsSync(out)) return;
  const ours = /^(config\.json|args\.yaml|state\.json|log\.jsonl|summary\.csv|(last|best|ema|optimizer)\.safetensors|checkpoint-\d+\.safetensors)$/;
  for (const f of readdirSync(out)) if (ours.test(f)) rmSync(join(out, f), { force: true });
}

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
  usage: 'MODEL --data PATH --output DIR [--val PATH | --val-split F] [--pretrained | --weights FILE] [--epochs N] [--batch-size N] [--lr LR] [--freeze head|PREFIX...] [--resume [PATH]] [--overwrite]',
  summary: "Fine-tune or train a model on your images (ImageFolder, CSV/TSV list, IDX) with timm's and PaddleClas' recipes.",
  options: {
    data: { type: 'string', arg: 'PATH', help: 'training data: a folder per class, a path,label CSV/TSV, or a folder of IDX files (MNIST/Fashion-MNIST)' },
    val: { type: 'string', arg: 'PATH', help: 'validation data (same layouts and classes)' },
    'val-split': { type: 'string', arg: 'F', help: "hold out this fraction of --data for validation (stratified, by --seed); not timm's --val-split, which names a split folder (timm users: --val PATH)" },
    output: { type: 'string', short: 'o', arg: 'DIR', help: "run directory: last/best.safetensors, config.json, args.yaml (the recipe for timm's train.py --config), state, log.jsonl, summary.csv" },
    resume: { type: 'string', optionalValue: true, arg: 'PATH', help: "continue the run in --output, or the run at PATH (timm's --resume PATH: a run directory or its last.safetensors), from where it stopped; with --epochs N past its end, extend it" },
    overwrite: { type: 'boolean', help: 'replace the run already in --output (without it, an existing run is refused)' },
    pretrained: { type: 'boolean', help: "start from the registry's pretrained weights (new classifier for your classes)" },
    weights: { type: 'string', arg: 'FILE', help: 'start from a checkpoint (.safetensors, .pth, .pdparams)' },
    epochs: { type: 'string', arg: 'N', help: 'epochs (default 10)' },
    'batch-size': { type: 'string', short: 'b', arg: 'N', help: 'batch size (default 32)' },
    size: { type: 'string', arg: 'N', aliases: ['img-size'], help: 'training and evaluation resolution (default: the model\'s)' },
    'input-size': { type: 'string', nargs: 3, arg: 'C H W', help: "timm's form of --in-chans and --size (H = W), e.g. 3 224 224" },
    'in-chans': { type: 'string', arg: '1|3', help: 'grayscale data: 3 replicates the channel (default), 1 builds the model with one input channel' },
    opt: { type: 'string', arg: 'sgd|adamw', help: 'optimizer (default sgd)' },
    lr: { type: 'string', arg: 'LR', help: 'base learning rate (default 0.01)' },
    momentum: { type: 'string', arg: 'M', help: 'SGD momentum (default 0.9)' },
    nesterov: { type: 'boolean', help: "Nesterov momentum (default with --opt sgd, as timm's; --opt momentum for plain momentum)" },
    'weight-decay': { type: 'string', arg: 'WD', help: 'weight decay, not on biases and norms (default 2e-5)' },
    'label-smoothing': { type: 'string', arg: 'E', aliases: ['smoothing'], help: 'label smoothing (default 0.1)' },
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
    'color-jitter': { type: 'string', arg: 'F', help: 'color jitter strength (default 0.4; 0 at <= 64 px)' },
    hflip: { type: 'string', arg: 'P', help: 'horizontal flip probability (default 0.5)' },
    scale: { type: 'string', arg: 'MIN,MAX', help: 'RandomResizedCrop area range (default 0.08,1; at <= 64 px the default is pad + random crop instead)' },
    ratio: { type: 'string', arg: 'MIN,MAX', help: 'RandomResizedCrop aspect range (default 0.75,1.333)' },
    padding: { type: 'string', arg: 'PX', help: 'small-image recipe (<= 64 px): pad by PX and crop at random (default size/8; 0: resize only)' },
    reprob: { type: 'string', arg: 'P', help: 'random erasing probability (default 0)' },
    'no-aug': { type: 'boolean', help: 'no augmentation: train on the evaluation transform' },
    'drop-path': { type: 'string', arg: 'P', help: "stochastic depth rate of the last block (timm's drop_path_rate; default 0)" },
    drop: { type: 'string', arg: 'P', help: "dropout before the classifier (timm's drop_rate; default 0)" },
    'model-ema': { type: 'boolean', help: 'keep an EMA of weights and buffers, evaluated beside the model' },
    'model-ema-decay': { type: 'string', arg: 'D', help: 'EMA decay with --model-ema (default 0.9998)' },
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
    'cache-images': { type: 'string', arg: 'auto|on|off', help: 'keep decoded images in memory across epochs: auto (default, within a quarter of free memory, at most 2 GiB), on, off' },
    workers: { type: 'string', short: 'j', arg: 'N', help: 'decode/augment worker threads (default: cores − 1)' },
    threads: { type: 'string', arg: 'N', help: 'ONNX Runtime intra-op threads (default: all cores)' },
    limit: { type: 'string', arg: 'N', help: 'use only the first N training (and validation) samples' },
    'log-interval': { type: 'string', arg: 'N', help: 'off a terminal, print a progress line every N batches on stderr' },
    json: { type: 'boolean', help: 'print the run summary as JSON' },
  },
  async run(p, v) {
    if (p.length !== 1) throw new UsageError('give exactly one model name');
    const name = p[0]!;
    const { out, output, resume } = runDir(v);
    const saved = resume ? savedRun(out, name) : undefined;
    if (!resume && !v['overwrite'] && existsSync(join(out, 'config.json'))) {
      throw new InputError(`${out} already holds a run (config.json): continue it with --resume, replace it with --overwrite, or give another --output`);
    }
    // A resumed run takes the recorded options; flags given now override them.
    const a: Values = { ...(saved?.args ?? {}), ...v, resume: resume ? '' : undefined };
    const epochs = int(a, 'epochs') ?? 10;
    if (saved && saved.done >= epochs) {
      // Nothing left to run: say so (and how to go on) rather than print a path as if it had trained.
      const msg = `${out} is complete: ${saved.done} of ${saved.epochs} epochs trained${saved.best ? ` (best: epoch ${saved.best.epoch}, ${saved.best.metric.toFixed(2)})` : ''}; to train longer, resume with --epochs N (N > ${saved.done}), which re-plans the LR schedule`;
      if (a['json']) process.stdout.write(`${JSON.stringify({ output: out, complete: true, epochs_done: saved.done, best: saved.best })}\n`);
      else process.stdout.write(`${msg}\n`);
      return 0;
    }
    const dataPath = str(a, 'data');
    if (!dataPath) throw new UsageError('--data PATH is required: a folder per class, a CSV/TSV list, or IDX files');
    const limit = int(a, 'limit');
    const seed = int(a, 'seed', 0) ?? 42;
    const trainAll = await openDataset(dataPath, { limit });
    if (trainAll.numClasses < 2) {
      throw new InputError(`${dataPath} has ${trainAll.numClasses} class${trainAll.numClasses === 1 ? ` (${trainAll.classes[0]})` : 'es'}: a classifier needs at least 2 (one folder, or label, per class)`);
    }
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
    const timmSize = inputSizeOpt(a);
    const inChans = int(a, 'in-chans') ?? timmSize?.[0] ?? 3;
    if (inChans !== 1 && inChans !== 3) throw new UsageError('--in-chans must be 1 or 3');
    const size = int(a, 'size') ?? timmSize?.[1] ?? cfg.inputSize[1];
    const model: Model = createModel(name, { numClasses: trainSet.numClasses, inChans, inputSize: size, ...dropOptions(a) });
    const given = str(a, 'weights');
    const weights = given === undefined ? undefined : weightsPath(given);
    if (resume) model.weights = timmInit(model.fullGraph, entry.family, seed); // replaced by last.safetensors
    else if (weights) {
      const width = checkpointClasses(name, weights);
      if (width !== undefined && width !== trainSet.numClasses) note(`${weights} has a ${width}-class classifier; training a new one for the ${trainSet.numClasses} classes of ${dataPath}`);
      model.loadCheckpoint(weights);
    }
    else if (a['pretrained']) await model.loadPretrained();
    else model.weights = timmInit(model.fullGraph, entry.family, seed);

    // Defaults by size: small images get pad + random crop instead of RandomResizedCrop (src/data/small-image.ts).
    const recipe = trainRecipeDefaults(size, { scale: numbers(a, 'scale', 2) !== undefined, ratio: numbers(a, 'ratio', 2) !== undefined, hflip: num(a, 'hflip', 0, 1), colorJitter: num(a, 'color-jitter', 0), padding: int(a, 'padding', 0) }, epochs);
    const pre = resolvePreprocess(model.cfg, { size, ...(recipe.evalCropPct ? { cropPct: recipe.evalCropPct } : {}) });
    const batchSize = int(a, 'batch-size') ?? 32;
    const workers = int(a, 'workers', 0);
    const transformConfig = {
      seed,
      channels: inChans,
      size: [size, size],
      interpolation: pre.interpolation,
      mean: pre.mean,
      std: pre.std,
      crop: recipe.crop,
      ...(recipe.crop === 'pad'
        ? { padding: recipe.padding }
        : { scale: (numbers(a, 'scale', 2) as [number, number] | undefined) ?? [0.08, 1], ratio: (numbers(a, 'ratio', 2) as [number, number] | undefined) ?? [3 / 4, 4 / 3] }),
      hflip: recipe.hflip,
      colorJitter: recipe.colorJitter,
      autoAugment: str(a, 'aa'),
      reprob: num(a, 'reprob', 0, 1) ?? 0,
    };
    const trainTransform: TransformSpec = a['no-aug']
      ? evalTransform(pre, { channels: inChans as 1 | 3 })
      : { module: siblingModule(import.meta.url, '../data/train-transform'), config: transformConfig };
    process.stderr.write(`${a['no-aug'] ? 'train transform: none (--no-aug), the evaluation transform' : recipe.note}\n`);
    const aug = {
      scale: (numbers(a, 'scale', 2) as [number, number] | undefined) ?? [0.08, 1],
      ratio: (numbers(a, 'ratio', 2) as [number, number] | undefined) ?? [3 / 4, 4 / 3],
      hflip: recipe.hflip,
      colorJitter: recipe.colorJitter,
      reprob: transformConfig.reprob,
    };
    const shape: [number, number, number] = [inChans, size, size];
    const cache = oneOf(a, 'cache-images', ['auto', 'on', 'off'] as const) ?? 'auto';
    const trainLoader = new DataLoader(trainSet, { batchSize, shape, transform: trainTransform, seed, dropLast: true, cache, ...(workers !== undefined ? { workers } : {}) });
    const valLoader = valSet ? new DataLoader(valSet, { batchSize, shape, transform: evalTransform(pre, { channels: inChans as 1 | 3 }), shuffle: false, cache, ...(workers !== undefined ? { workers } : {}) }) : undefined;
    if (trainLoader.batchesPerEpoch === 0) throw new InputError(`--batch-size ${batchSize} is larger than the ${trainSet.length} training samples`);

    const freeze = (a['freeze'] as string[] | undefined) ?? [];
    const distillKind = str(a, 'teacher') ? (oneOf(a, 'distill', ['kl', 'dml'] as const) ?? 'kl') : undefined;
    const topt: TrainerOptions = {
      // timm's 'sgd' is Nesterov SGD; its 'momentum' is plain momentum SGD.
      optimizer: oneOf(a, 'opt', ['sgd', 'momentum', 'adamw'] as const) === 'adamw' ? 'adamw' : 'sgd',
      lr: num(a, 'lr', 0) ?? 0.01,
      momentum: num(a, 'momentum', 0, 1) ?? 0.9,
      nesterov: a['nesterov'] !== undefined ? Boolean(a['nesterov']) : (oneOf(a, 'opt', ['sgd', 'momentum', 'adamw'] as const) ?? 'sgd') === 'sgd',
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
      teacher.newHeadAllowed = false; // a teacher with a random classifier teaches noise
      teacher.loadCheckpoint(tw);
    }

    const schedule = {
      kind: oneOf(a, 'sched', ['cosine', 'step', 'constant'] as const) ?? 'cosine',
      warmupEpochs: num(a, 'warmup-epochs', 0) ?? 0,
      warmupLr: num(a, 'warmup-lr', 0) ?? 1e-5,
      minLr: num(a, 'min-lr', 0) ?? 0,
      decayEvery: Math.round((num(a, 'decay-epochs', 0) ?? 30) * Math.max(1, trainLoader.batchesPerEpoch)),
      decayRate: num(a, 'decay-rate', 0) ?? 0.1,
    };
    if (saved && saved.epochs !== epochs) {
      // Another length re-plans the schedule over the new total: the LR the run goes on with changes; say so.
      const per = Math.max(1, Math.floor(trainLoader.batchesPerEpoch / (topt.accumulate ?? 1)));
      const plan = (e: number) => ({ ...schedule, lr: topt.lr!, total: e * per, warmup: Math.round(schedule.warmupEpochs * per) });
      const t = saved.done * per;
      note(
        `${epochs > saved.epochs ? 'extending' : 'shortening'} ${out} from ${saved.epochs} to ${epochs} epochs (${saved.done} done): the ${schedule.kind} schedule is re-planned over ${epochs} epochs, so the LR goes on at ${lrAt(plan(epochs), t).toExponential(2)} where the ${saved.epochs}-epoch plan had ${lrAt(plan(saved.epochs), Math.max(0, t - 1)).toExponential(2)}`,
      );
    }
    if (v['overwrite']) removeRun(out);
    const mixup = { mixup: num(a, 'mixup', 0) ?? 0, cutmix: num(a, 'cutmix', 0) ?? 0, prob: num(a, 'mixup-prob', 0, 1) ?? 1, switchProb: num(a, 'mixup-switch-prob', 0, 1) ?? 0.5 };
    const emaDecay = a['model-ema'] ? (num(a, 'model-ema-decay', 0, 1) ?? 0.9998) : undefined;
    const timmRecipe: TimmRecipe = {
      model: entry.name, numClasses: trainSet.numClasses, inChans, size, data: dataPath, ...(valPath ? { val: valPath } : {}), layout: trainAll.kind, output: out, pre, epochs, batchSize, seed,
      ...(workers !== undefined ? { workers } : {}), ...(weights ? { weights } : {}), topt,
      schedule: { kind: schedule.kind, warmupEpochs: schedule.warmupEpochs, warmupLr: schedule.warmupLr, minLr: schedule.minLr, decayEpochs: num(a, 'decay-epochs', 0) ?? 30, decayRate: schedule.decayRate },
      aug: { noAug: Boolean(a['no-aug']), ...aug, ...(str(a, 'aa') ? { aa: str(a, 'aa') } : {}) },
      mixup, ...(emaDecay !== undefined ? { ema: emaDecay } : {}), ...(int(a, 'checkpoint-hist') ? { checkpointHist: int(a, 'checkpoint-hist') } : {}), ...(int(a, 'log-interval') ? { logInterval: int(a, 'log-interval') } : {}),
    };
    mkdirSync(out, { recursive: true });
    writeChunksAtomic(join(out, 'args.yaml'), [new TextEncoder().encode(toYaml(timmArgs(timmRecipe, a), [`tsimm train's recipe under timm 0.9.16 train.py's argument names: python train.py --config ${join(out, 'args.yaml')}`, ...timmCaveats(timmRecipe, a, entry.source), ...(recipe.crop === 'pad' ? [`timm's train.py has no pad + random crop: it trains these ${size} px images with RandomResizedCrop (scale, ratio above)`] : [])]))]);

    process.stderr.write(`recipe: ${epochs} epochs, batch ${batchSize}, ${topt.optimizer}${topt.optimizer === 'sgd' ? ` momentum ${topt.momentum}${topt.nesterov ? ' nesterov' : ''}` : ''} lr ${topt.lr}, weight decay ${topt.weightDecay}, label smoothing ${topt.labelSmoothing}, ${oneOf(a, 'sched', ['cosine', 'step', 'constant'] as const) ?? 'cosine'} schedule; eval ${pre.size[0]} px crop_pct ${pre.cropPct} ${pre.interpolation}\n`);
    const ctl = new AbortController();
    const onSigint = () => ctl.abort();
    process.once('SIGINT', onSigint);
    let result;
    try {
      result = await fit({
        model,
        train: loaderSource(trainLoader, batchSize),
        ...(valLoader ? { val: loaderSource(valLoader, batchSize) } : {}),
        epochs,
        trainer: topt,
        schedule,
        ...(mixup.mixup > 0 || mixup.cutmix > 0 ? { mixup: { mixupAlpha: mixup.mixup, cutmixAlpha: mixup.cutmix, prob: mixup.prob, switchProb: mixup.switchProb } } : {}),
        ...(emaDecay !== undefined ? { ema: emaDecay } : {}),
        ...(teacher ? { teacher } : {}),
        output: out,
        resume,
        ...(int(a, 'checkpoint-hist') ? { checkpointHist: int(a, 'checkpoint-hist') } : {}),
        seed,
        config: {
          class_names: trainSet.classes,
          preprocess: pre,
          train_transform: a['no-aug'] ? null : { ...transformConfig, note: recipe.note },
          data: { train: resolve(dataPath), val: valPath ? resolve(valPath) : undefined, val_split: str(a, 'val-split'), train_samples: trainSet.length, val_samples: valSet?.length ?? 0 },
          args: Object.fromEntries(Object.entries(a).filter(([k, x]) => !['resume', 'overwrite', 'json', 'output'].includes(k) && x !== undefined)),
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

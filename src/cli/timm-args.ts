/**
 * `tsimm train` and timm's train.py: the recipe written as timm's args.yaml (the file `train.py --config` reads,
 * keys are train.py's argparse names), and timm's model-regularization flags. A run that outgrows one machine
 * continues in timm's own distributed training (deploy/pytorchjob.yaml) from this file.
 */
import { basename, dirname, resolve } from 'node:path';
import type { PreprocessConfig } from '../data/transforms.js';
import { num, str, UsageError, type Values } from './args.js';

/**
 * timm's dropout flags → the model option each becomes (training graphs only; inference graphs have no node).
 * As in timm, Res2Net and ResNeSt blocks take no drop path, and DeiT's distilled heads no head dropout.
 */
const DROP_FLAGS: { flag: string; field: 'dropPathRate' | 'dropRate'; what: string }[] = [
  { flag: 'drop-path', field: 'dropPathRate', what: 'stochastic depth' },
  { flag: 'drop', field: 'dropRate', what: 'classifier dropout' },
];

/** The model options of --drop-path/--drop. */
export function dropOptions(a: Values): Partial<Record<'dropPathRate' | 'dropRate', number>> {
  const o: Partial<Record<'dropPathRate' | 'dropRate', number>> = {};
  for (const d of DROP_FLAGS) {
    const x = num(a, d.flag, 0, 1);
    if (x === 1) throw new UsageError(`--${d.flag} (${d.what}) must be below 1: at 1 nothing passes`);
    if (!x) continue;
    o[d.field] = x;
  }
  return o;
}

/** timm's `--input-size C H W` (square only: tsimm trains at one size) → [channels, size]. */
export function inputSizeOpt(a: Values): [number, number] | undefined {
  const s = str(a, 'input-size');
  if (s === undefined) return undefined;
  const [c, h, w] = s.split(',').map(Number);
  if (![c, h, w].every((x) => Number.isInteger(x) && x! > 0) || (c !== 1 && c !== 3) || h !== w) throw new UsageError(`--input-size takes C H W with C 1 or 3 and H = W (e.g. 3 224 224), got ${s.replace(/,/g, ' ')}`);
  return [c!, h!];
}

export interface TimmRecipe {
  model: string;
  numClasses: number;
  inChans: number;
  size: number;
  data: string;
  val?: string;
  layout: string;
  output: string;
  pre: PreprocessConfig;
  epochs: number;
  batchSize: number;
  seed: number;
  workers?: number;
  weights?: string;
  topt: { optimizer?: string; lr?: number; momentum?: number; nesterov?: boolean; weightDecay?: number; labelSmoothing?: number; clipGrad?: number; layerDecay?: number; accumulate?: number };
  schedule: { kind: string; warmupEpochs: number; warmupLr: number; minLr: number; decayEpochs: number; decayRate: number };
  aug: { noAug: boolean; scale: [number, number]; ratio: [number, number]; hflip: number; colorJitter: number; aa?: string; reprob: number };
  mixup: { mixup: number; cutmix: number; prob: number; switchProb: number };
  ema?: number;
  checkpointHist?: number;
  logInterval?: number;
}

/** The recipe under timm 0.9.16 train.py's argument names, each choice tsimm made written out (timm's defaults differ). */
export function timmArgs(r: TimmRecipe, a: Values): Record<string, unknown> {
  // timm reads <data_dir>/<train_split> and <data_dir>/<val_split>: the two folders side by side.
  const data = resolve(r.data);
  const val = r.val ? resolve(r.val) : undefined;
  const sameParent = !val || dirname(val) === dirname(data);
  const sched = r.schedule.kind === 'constant' ? { sched: 'step', decay_rate: 1.0, decay_epochs: r.epochs } : { sched: r.schedule.kind, decay_rate: r.schedule.decayRate, decay_epochs: r.schedule.decayEpochs };
  // timm's 'sgd' is Nesterov SGD; plain momentum SGD is 'momentum'.
  const opt = r.topt.optimizer === 'adamw' ? 'adamw' : r.topt.nesterov ? 'sgd' : 'momentum';
  const y: Record<string, unknown> = {
    model: r.model,
    pretrained: Boolean(a['pretrained']),
    initial_checkpoint: r.weights ? resolve(r.weights) : '',
    num_classes: r.numClasses,
    in_chans: r.inChans,
    input_size: [r.inChans, r.size, r.size],
    data_dir: sameParent ? dirname(data) : data,
    train_split: sameParent ? basename(data) : '.',
    ...(val && sameParent ? { val_split: basename(val) } : {}),
    crop_pct: r.pre.cropPct,
    mean: r.pre.mean,
    std: r.pre.std,
    interpolation: r.pre.interpolation,
    train_interpolation: r.pre.interpolation,
    batch_size: r.batchSize,
    epochs: r.epochs,
    opt,
    lr: r.topt.lr ?? 0.01,
    momentum: r.topt.momentum ?? 0.9,
    weight_decay: r.topt.weightDecay ?? 2e-5,
    smoothing: r.topt.labelSmoothing ?? 0.1,
    drop: dropOptions(a).dropRate ?? 0,
    drop_path: dropOptions(a).dropPathRate ?? null,
    ...sched,
    sched_on_updates: true,
    warmup_epochs: r.schedule.warmupEpochs,
    warmup_lr: r.schedule.warmupLr,
    min_lr: r.schedule.minLr,
    cooldown_epochs: 0,
    no_aug: r.aug.noAug,
    scale: r.aug.scale,
    ratio: r.aug.ratio,
    hflip: r.aug.hflip,
    color_jitter: r.aug.colorJitter,
    aa: r.aug.aa ?? null,
    reprob: r.aug.reprob,
    mixup: r.mixup.mixup,
    cutmix: r.mixup.cutmix,
    mixup_prob: r.mixup.prob,
    mixup_switch_prob: r.mixup.switchProb,
    model_ema: r.ema !== undefined,
    ...(r.ema !== undefined ? { model_ema_decay: r.ema } : {}),
    clip_grad: r.topt.clipGrad ?? null,
    layer_decay: r.topt.layerDecay ?? null,
    grad_accum_steps: r.topt.accumulate ?? 1,
    seed: r.seed,
    ...(r.workers !== undefined ? { workers: Math.max(1, r.workers) } : {}),
    ...(r.checkpointHist ? { checkpoint_hist: r.checkpointHist } : {}),
    ...(r.logInterval ? { log_interval: r.logInterval } : {}),
    output: resolve(r.output),
  };
  return y;
}

/** A YAML flow value: JSON's, but exponents get a mantissa dot (PyYAML reads `1e-7` as a string, `1.0e-7` as a float). */
function yamlValue(v: unknown): string {
  if (typeof v === 'number') return JSON.stringify(v).replace(/^(-?\d+)e/, '$1.0e');
  if (Array.isArray(v)) return `[${v.map(yamlValue).join(', ')}]`;
  return JSON.stringify(v);
}

/** YAML text of flat key/values (JSON scalars and lists are YAML flow values), with a header comment. */
export function toYaml(y: Record<string, unknown>, comments: string[]): string {
  const lines = comments.map((c) => `# ${c}`);
  for (const [k, v] of Object.entries(y)) lines.push(`${k}: ${yamlValue(v)}`);
  return `${lines.join('\n')}\n`;
}

/** What timm cannot take from this run, said in args.yaml's header. */
export function timmCaveats(r: TimmRecipe, a: Values, source: string): string[] {
  const c: string[] = [];
  if (source !== 'timm') c.push(`${r.model} is a PaddleClas model: timm has no architecture of that name`);
  if (r.layout !== 'imagefolder') c.push(`--data is a ${r.layout} dataset: timm's train.py reads ImageFolder trees (data_dir/train_split)`);
  if (str(a, 'val-split') !== undefined) c.push(`--val-split ${str(a, 'val-split')} held out a fraction of --data; timm has no such split: give it a validation folder (val_split)`);
  for (const k of ['teacher', 'freeze', 'batch-norm']) if (a[k] !== undefined) c.push(`--${k} has no timm train.py equivalent and is left out`);
  return c;
}

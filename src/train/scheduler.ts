/**
 * Learning-rate schedules, stepped per optimizer update as timm's `step_update` (sched_on_updates): cosine with
 * linear warmup (CosineLRScheduler: lr_min + ½(lr − lr_min)(1 + cos(π·t/T)) after `warmup` updates rising
 * linearly from `warmupLr`), step decay (StepLRScheduler: lr · rate^⌊t/decay⌋), or constant.
 */

export type ScheduleKind = 'cosine' | 'step' | 'constant';

export interface ScheduleOptions {
  kind?: ScheduleKind;
  lr: number;
  /** Total updates of the run (cosine's T). */
  total: number;
  /** Linear warmup updates (timm's warmup_epochs × updates per epoch). */
  warmup?: number;
  /** Where warmup starts (timm's warmup_lr, 1e-5). */
  warmupLr?: number;
  /** Cosine floor (timm's min_lr, 0). */
  minLr?: number;
  /** Step decay: every `decayEvery` updates multiply by `decayRate` (timm's decay_epochs / decay_rate 0.1). */
  decayEvery?: number;
  decayRate?: number;
  /** timm's warmup_prefix: the decay starts after the warmup instead of counting it. */
  warmupPrefix?: boolean;
}

/** The learning rate for update `t` (0-based). */
export function lrAt(o: ScheduleOptions, t: number): number {
  const warmup = o.warmup ?? 0;
  const warmupLr = o.warmupLr ?? 1e-5;
  if (t < warmup) return warmupLr + (t * (o.lr - warmupLr)) / warmup;
  const tt = o.warmupPrefix ? t - warmup : t;
  switch (o.kind ?? 'cosine') {
    case 'constant':
      return o.lr;
    case 'step':
      return o.lr * (o.decayRate ?? 0.1) ** Math.floor(tt / Math.max(1, o.decayEvery ?? o.total));
    case 'cosine': {
      const total = Math.max(1, o.warmupPrefix ? o.total - warmup : o.total);
      const min = o.minLr ?? 0;
      if (tt >= total) return min;
      return min + 0.5 * (o.lr - min) * (1 + Math.cos((Math.PI * tt) / total));
    }
  }
}

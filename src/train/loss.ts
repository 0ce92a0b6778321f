/**
 * Losses as graph sections with their logit gradients written out (their backward is a closed form, cheaper than
 * differentiating LogSoftmax step by step):
 * - soft-target cross-entropy: `-Σ t·log softmax(z)`; class indices with label smoothing become
 *   `t = (1 − ε)·onehot + ε/C` on the host (PyTorch's and timm's smoothing), mixup/cutmix give `t` directly;
 * - knowledge distillation from teacher logits given as an input: Hinton's KL at temperature T (× T²), or
 *   PaddleClas' DML (the symmetric KL of the two softmaxes, halved), mixed as `(1 − α)·CE + α·KD`.
 * Outputs: `loss` (the batch mean) and `losses` (per sample).
 */
import type { OnnxBuilder } from './onnx-builder.js';

export type LossSpec =
  | { kind: 'ce' }
  | { kind: 'kl'; temperature: number; alpha: number }
  | { kind: 'dml'; alpha: number };

export interface LossNodes {
  targets: string;
  teacher?: string;
  dLogits: string;
  /** Batch means of the loss's parts, as graph outputs (distillation: `loss_ce`, `loss_kd`). */
  terms: string[];
}

export function buildLoss(b: OnnxBuilder, logits: string, numClasses: number, spec: LossSpec, invN: string): LossNodes {
  const targets = b.input('targets', ['N', numClasses]);
  const axis1 = b.ints([1]);
  const logp = b.op('LogSoftmax', [logits], { axis: 1 }, 'loss');
  const p = b.op('Softmax', [logits], { axis: 1 }, 'loss');
  const ce = b.op('Neg', [b.op('ReduceSum', [b.op('Mul', [targets, logp]), axis1], { keepdims: 0 })]);
  // d/dz of -Σ t log softmax(z) = p·Σt − t (Σt = 1 for proper targets, kept general).
  const dce = b.op('Sub', [b.op('Mul', [p, b.op('ReduceSum', [targets, axis1], { keepdims: 1 })]), targets]);
  let per = ce;
  let dz = dce;
  let teacher: string | undefined;
  if (spec.kind !== 'ce') {
    teacher = b.input('teacher', ['N', numClasses]);
    let kd: string;
    let dkd: string;
    if (spec.kind === 'kl') {
      const T = spec.temperature;
      const inv = b.scalar(1 / T);
      const zs = b.op('Mul', [logits, inv]);
      const zt = b.op('Mul', [teacher, inv]);
      const lps = b.op('LogSoftmax', [zs], { axis: 1 });
      const ps = b.op('Softmax', [zs], { axis: 1 });
      const lpt = b.op('LogSoftmax', [zt], { axis: 1 });
      const pt = b.op('Softmax', [zt], { axis: 1 });
      kd = b.op('Mul', [b.op('ReduceSum', [b.op('Mul', [pt, b.op('Sub', [lpt, lps])]), axis1], { keepdims: 0 }), b.scalar(T * T)]);
      dkd = b.op('Mul', [b.op('Sub', [ps, pt]), b.scalar(T)]);
    } else {
      const lq = b.op('LogSoftmax', [teacher], { axis: 1 });
      const q = b.op('Softmax', [teacher], { axis: 1 });
      const r = b.op('Sub', [logp, lq]);
      const klqp = b.op('Mul', [q, b.op('Neg', [r])]);
      const klpq = b.op('Mul', [p, r]);
      kd = b.op('Mul', [b.op('ReduceSum', [b.op('Add', [klqp, klpq]), axis1], { keepdims: 0 }), b.scalar(0.5)]);
      // KL(q‖p)' = p − q; KL(p‖q)' = p·(r − Σ p·r).
      const pr = b.op('ReduceSum', [klpq, axis1], { keepdims: 1 });
      const d2 = b.op('Mul', [p, b.op('Sub', [r, pr])]);
      dkd = b.op('Mul', [b.op('Add', [b.op('Sub', [p, q]), d2]), b.scalar(0.5)]);
    }
    const a = spec.alpha;
    b.node('ReduceMean', [ce], { axes: [0], keepdims: 0 }, 'loss', [b.output('loss_ce', [])]);
    b.node('ReduceMean', [kd], { axes: [0], keepdims: 0 }, 'loss', [b.output('loss_kd', [])]);
    per = b.op('Add', [b.op('Mul', [ce, b.scalar(1 - a)]), b.op('Mul', [kd, b.scalar(a)])]);
    dz = b.op('Add', [b.op('Mul', [dce, b.scalar(1 - a)]), b.op('Mul', [dkd, b.scalar(a)])]);
  }
  b.node('Identity', [per], {}, 'loss', [b.output('losses', ['N'])]);
  b.node('ReduceMean', ['losses'], { axes: [0], keepdims: 0 }, 'loss', [b.output('loss', [])]);
  return { targets, teacher, dLogits: b.op('Mul', [dz, invN], {}, 'loss'), terms: teacher ? ['loss_ce', 'loss_kd'] : [] };
}

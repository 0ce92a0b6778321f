/**
 * Training step with convs on ORT's blocked kernels against the standard-ops graph (src/train/nchwc.ts), in one
 * process, taking turns step by step (ABBA), plus how far the gradients differ.
 *
 *   [VARIANTS=plain,convs,all] npx tsx bench/train-nchwc.ts [MODEL] [SIZE] [BATCH] [STEPS] [THREADS]   (default resnet18 32 64 6 2)
 */
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createModel } from '../src/model.js';
import { machineInfo } from '../src/tasks/bench.js';
import { nchwcBlock, type Trainer } from '../src/train/trainer.js';

const [name = 'resnet18', size = '32', batch = '64', steps = '6', threads = '2'] = process.argv.slice(2);
const [s, n] = [Number(size), Number(batch)];
const block = await nchwcBlock();
console.log('block', block);
const checks: Record<string, { loss: number; worstRelGradDiff: number }> = {};
const mk = (nchwc: boolean) => createModel(name, { inputSize: s }).initWeights(0).trainer({ optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4, labelSmoothing: 0.1, batchNorm: 'train', threads: Number(threads), nchwc });
// Variants: plain (standard ops), convs (forward + dX blocked, TSIMM_NCHWC_DW=0), all (+ blocked dW).
const variants = (process.env['VARIANTS'] ?? 'plain,convs,all').split(',');
const x = { shape: [n, 3, s, s], data: Float32Array.from({ length: n * 3 * s * s }, () => Math.random() * 2 - 1) };
const targets = Array.from({ length: n }, (_, i) => i % 1000);
const trainers: { v: string; t: Trainer; ms: number[] }[] = [];
let ref: Awaited<ReturnType<Trainer['forwardBackward']>> | undefined;
for (const v of variants) {
  process.env['TSIMM_NCHWC_DW'] = v === 'all' ? '1' : '0';
  const t = mk(v !== 'plain');
  const f = await t.forwardBackward(x, targets); // creates the session with this variant
  ref ??= f;
  let worst = 0;
  for (const [p, g] of ref.grads) {
    const h = f.grads.get(p)!;
    let d = 0;
    let q = 0;
    for (let i = 0; i < g.length; i++) [d, q] = [d + (g[i]! - h[i]!) ** 2, q + g[i]! ** 2];
    worst = Math.max(worst, Math.sqrt(d / Math.max(q, 1e-12)));
  }
  console.log(`${v}: nchwc ${t.nchwc}, loss ${f.loss}, worst per-tensor relative gradient difference to ${variants[0]} ${worst.toExponential(2)}`);
  checks[v] = { loss: f.loss, worstRelGradDiff: worst };
  trainers.push({ v, t, ms: [] });
}
for (let k = 0; k < Number(steps); k++) {
  for (const r of k % 2 ? [...trainers].reverse() : trainers) {
    const t0 = performance.now();
    await r.t.step(x, targets);
    r.ms.push(performance.now() - t0);
  }
}
const med = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1]!;
for (const r of trainers) console.log(`${name} ${s}px b${n} ${r.v}: ${r.ms.map(Math.round).join(' ')} | median ${Math.round(med(r.ms))} | ratio to ${variants[0]} ${(med(r.ms) / med(trainers[0]!.ms)).toFixed(3)}`);

const git = (() => {
  try {
    return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
})();
const out = {
  kind: 'train-nchwc',
  date: new Date().toISOString(),
  machine: machineInfo(Number(threads)),
  git,
  model: name, size: s, batch: n, block,
  protocol: 'one process, the variants take turns step by step (order reversed every step), after one untimed forward/backward each; ratio = median step / median step of the first variant',
  variants: trainers.map((r) => ({ variant: r.v, stepMs: r.ms.map(Math.round), medianMs: Math.round(med(r.ms)), ratio: Number((med(r.ms) / med(trainers[0]!.ms)).toFixed(3)), ...checks[r.v] })),
};
const dir = join(dirname(import.meta.filename), 'results', 'vm');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${out.date.slice(0, 10)}-train-nchwc-${name}-${s}x${n}.json`);
writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
console.log(`wrote ${file}`);

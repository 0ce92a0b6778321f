/**
 * Training step with convs on ORT's blocked kernels against the standard-ops graph (src/train/nchwc.ts), in one
 * process, taking turns step by step (ABBA), plus how far the gradients differ.
 *
 *   npx tsx bench/train-nchwc.ts [MODEL] [SIZE] [BATCH] [STEPS] [THREADS]    (default resnet18 32 64 6 2)
 */
import { createModel } from '../src/model.js';
import { nchwcBlock, type Trainer } from '../src/train/trainer.js';

const [name = 'resnet18', size = '32', batch = '64', steps = '6', threads = '2'] = process.argv.slice(2);
const [s, n] = [Number(size), Number(batch)];
console.log('block', await nchwcBlock());
const mk = (nchwc: boolean) => createModel(name, { inputSize: s }).initWeights(0).trainer({ optimizer: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4, labelSmoothing: 0.1, batchNorm: 'train', threads: Number(threads), nchwc });
const plain = mk(false);
const blocked = mk(true);
const x = { shape: [n, 3, s, s], data: Float32Array.from({ length: n * 3 * s * s }, () => Math.random() * 2 - 1) };
const targets = Array.from({ length: n }, (_, i) => i % 1000);
const fa = await plain.forwardBackward(x, targets);
const fb = await blocked.forwardBackward(x, targets);
let worst = 0;
for (const [p, g] of fa.grads) {
  const h = fb.grads.get(p)!;
  let d = 0;
  let q = 0;
  for (let i = 0; i < g.length; i++) [d, q] = [d + (g[i]! - h[i]!) ** 2, q + g[i]! ** 2];
  worst = Math.max(worst, Math.sqrt(d / Math.max(q, 1e-12)));
}
console.log(`nchwc ${blocked.nchwc}, loss ${fa.loss} vs ${fb.loss}, worst per-tensor relative gradient difference ${worst.toExponential(2)}`);
const times = new Map<Trainer, number[]>([[plain, []], [blocked, []]]);
for (let k = 0; k < Number(steps); k++) {
  for (const t of k % 2 ? [blocked, plain] : [plain, blocked]) {
    const t0 = performance.now();
    await t.step(x, targets);
    times.get(t)!.push(performance.now() - t0);
  }
}
const med = (v: number[]) => [...v].sort((p, q) => p - q)[v.length >> 1]!;
const [a, b] = [times.get(plain)!, times.get(blocked)!];
console.log(`${name} ${s}px b${n}: plain ${a.map(Math.round).join(' ')} | nchwc ${b.map(Math.round).join(' ')} | median ratio nchwc/plain ${(med(b) / med(a)).toFixed(3)}`);

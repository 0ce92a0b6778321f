import { createModel } from '../src/model.js';
const [name, s, n] = [process.env['M'] ?? 'resnet34', Number(process.env['S'] ?? 64), Number(process.env['N'] ?? 2)];
const model = createModel(name, { inputSize: s, numClasses: 10 }).initWeights(1);
const mk = (nchwc: boolean, threads: number) => model.trainer({ batchNorm: 'train', nchwc, threads });
const data = Float32Array.from({ length: n * 3 * s * s }, (_, i) => Math.sin(i * 0.37));
const x = { shape: [n, 3, s, s], data }, t = Array.from({ length: n }, (_, i) => (i * 3) % 10);
const base = await mk(false, 1).forwardBackward(x, t);
for (const [label, tr, dw] of [['plain 2 threads', mk(false, 2), '1'], ['nchwc convs', mk(true, 1), '0'], ['nchwc all', mk(true, 1), '1']] as const) {
  process.env['TSIMM_NCHWC_DW'] = dw;
  const f = await tr.forwardBackward(x, t);
  const rows: [number, string][] = [];
  for (const [p, g] of base.grads) { const h = f.grads.get(p)!; let d = 0, q = 0; for (let i = 0; i < g.length; i++) { d += (g[i]! - h[i]!) ** 2; q += g[i]! ** 2; } rows.push([Math.sqrt(d) / Math.max(Math.sqrt(q), 1e-3), p]); }
  rows.sort((a, b) => b[0] - a[0]);
  console.log(label, base.loss, f.loss, rows.slice(0, 4).map(([v, p]) => `${p} ${v.toExponential(2)}`).join(', '));
}

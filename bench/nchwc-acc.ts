import ort from 'onnxruntime-node';
import { OnnxBuilder } from '../src/train/onnx-builder.js';
import { nchwcConv } from '../src/train/nchwc.js';
for (const [cin, cout, k, st, hw, N] of [[3, 64, 7, 2, 64, 2], [3, 64, 7, 2, 63, 2], [3, 32, 3, 2, 64, 2], [3, 64, 7, 2, 224, 1]] as const) {
  const b = new OnnxBuilder();
  const x = b.input('x', [N, cin, hw, hw]);
  const w = b.input('w', [cout, cin, k, k]);
  const p = (k - 1) / 2;
  const attrs = { kernel_shape: [k, k], strides: [st, st], pads: [p, p, p, p], dilations: [1, 1], group: 1 };
  b.node('Conv', [x, w], attrs, '', ['ref']);
  nchwcConv(b, { x, w, inCh: cin, outCh: cout, group: 1, kh: k, kw: k, attrs, name: 'c', outputs: ['got'] }, 16);
  b.output('ref', [N, cout, 'H', 'W']); b.output('got', [N, cout, 'H', 'W']);
  const s = await ort.InferenceSession.create(b.encode(), { logSeverityLevel: 3, intraOpNumThreads: 1 });
  const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
  const xd = rand(N * cin * hw * hw, 1), wd = rand(cout * cin * k * k, 2);
  const r = await s.run({ x: new ort.Tensor('float32', xd, [N, cin, hw, hw]), w: new ort.Tensor('float32', wd, [cout, cin, k, k]) });
  const [ref, got] = [r['ref']!.data as Float32Array, r['got']!.data as Float32Array];
  const oh = r['ref']!.dims[2] as number;
  let eR = 0, eG = 0, mx = 0;
  for (let n = 0; n < N; n++) for (let o = 0; o < cout; o++) for (let i = 0; i < oh; i++) for (let j = 0; j < oh; j++) {
    let acc = 0;
    for (let c = 0; c < cin; c++) for (let u = 0; u < k; u++) for (let v = 0; v < k; v++) {
      const y = i * st - p + u, xx = j * st - p + v;
      if (y < 0 || xx < 0 || y >= hw || xx >= hw) continue;
      acc += xd[((n * cin + c) * hw + y) * hw + xx]! * wd[((o * cin + c) * k + u) * k + v]!;
    }
    const idx = ((n * cout + o) * oh + i) * oh + j;
    eR = Math.max(eR, Math.abs(ref[idx]! - acc)); eG = Math.max(eG, Math.abs(got[idx]! - acc)); mx = Math.max(mx, Math.abs(acc));
  }
  console.log(`${cin}->${cout} k${k} s${st} @${hw}: max|y| ${mx.toFixed(2)} plain err ${eR.toExponential(2)} nchwc err ${eG.toExponential(2)}`);
}

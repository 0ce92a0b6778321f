/**
 * timm's ModelEmaV3 without warmup: after every optimizer update, ema = decay·ema + (1 − decay)·weights, for the
 * parameters and the BatchNorm buffers alike (decay 0.9998 by default). Evaluated beside the model.
 */
export class Ema {
  readonly weights = new Map<string, Float32Array>();

  constructor(
    source: Map<string, Float32Array>,
    readonly decay = 0.9998,
  ) {
    for (const [k, v] of source) this.weights.set(k, v.slice());
  }

  update(source: Map<string, Float32Array>): void {
    const d = this.decay;
    for (const [k, e] of this.weights) {
      const v = source.get(k)!;
      for (let i = 0; i < e.length; i++) e[i] = d * e[i]! + (1 - d) * v[i]!;
    }
  }
}

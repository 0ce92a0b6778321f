/**
 * The training recipes' random numbers: augment.ts's seeded generator (whole state four words, derivable per
 * (seed, epoch, index) so a resumed run draws what an uninterrupted one would) plus the distributions mixup
 * needs (gamma, beta).
 */
import { Rng as BaseRng } from '../data/augment.js';

export class Rng extends BaseRng {
  /** Uniform in [0, 1). */
  next(): number {
    return this.random();
  }

  /** Gamma(k, 1) by Marsaglia–Tsang (k < 1 boosted by U^(1/k)). */
  gamma(k: number): number {
    if (k < 1) return this.gamma(k + 1) * this.random() ** (1 / k);
    const d = k - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.random();
      if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  beta(a: number, b: number): number {
    const x = this.gamma(a);
    return x / (x + this.gamma(b));
  }
}

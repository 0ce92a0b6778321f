/**
 * The seeded random numbers every stage shares (augmentation, sampling, mixup, init): xoshiro128** whose whole
 * state is four words, derivable per (seed, epoch, index) so a resumed run draws what an uninterrupted one
 * would, plus the distributions mixup needs (gamma, beta). Below `data` and `train`: both import it.
 */
/** The complete state of an `Rng`: four uint32 words (JSON-serialisable). */
export interface RngState {
  s: [number, number, number, number];
}

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) >>> 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * xoshiro128** with Python `random`-style helpers. Seeded from a number (any finite double: the low and
 * high 32 bits both count) or restored from a saved `RngState`.
 */
export class Rng {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  constructor(seed: number | RngState = 0) {
    if (typeof seed === 'number') this.seed(seed);
    else this.setState(seed);
  }

  static fromState(state: RngState): Rng {
    return new Rng(state);
  }

  private seed(seed: number): void {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    let x = splitmix32(lo ^ splitmix32(hi ^ 0x5bd1e995));
    this.a = x = splitmix32(x);
    this.b = x = splitmix32(x);
    this.c = x = splitmix32(x);
    this.d = x = splitmix32(x);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  getState(): RngState {
    return { s: [this.a, this.b, this.c, this.d] };
  }

  setState(state: RngState): void {
    const s = state.s;
    if (!Array.isArray(s) || s.length !== 4 || !s.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
      throw new RangeError('RNG state must be { s: [four uint32] }');
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new RangeError('RNG state must not be all zero');
    [this.a, this.b, this.c, this.d] = s;
  }

  clone(): Rng {
    return new Rng(this.getState());
  }

  /** The next uint32. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits (Python's random.random()). */
  random(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** random.uniform(lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** random.randint(lo, hi): an integer in [lo, hi], both inclusive, unbiased. */
  int(lo: number, hi: number): number {
    const n = hi - lo + 1;
    if (!(n >= 1) || !Number.isInteger(lo) || !Number.isInteger(hi)) throw new RangeError(`bad integer range [${lo}, ${hi}]`);
    if (n > 4294967296) return lo + Math.floor(this.random() * n);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return lo + (r % n);
    }
  }

  /** A standard normal sample (Box–Muller; the spare value is discarded so the state stays four words). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.random();
    const u2 = this.random();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Fill `out[offset .. offset+n)` with standard normals, two per Box–Muller pair, in float32. */
  fillNormal(out: Float32Array, offset: number, n: number): void {
    let i = 0;
    while (i < n) {
      const u1 = 1 - this.random();
      const u2 = this.random();
      const r = Math.sqrt(-2 * Math.log(u1));
      out[offset + i++] = r * Math.cos(2 * Math.PI * u2);
      if (i < n) out[offset + i++] = r * Math.sin(2 * Math.PI * u2);
    }
  }

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

  /** An element chosen uniformly. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('choice from an empty list');
    return items[this.int(0, items.length - 1)]!;
  }

  /** A uniformly random permutation of 0..n-1 (torch.randperm). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i);
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * An independent stream for (seed, ...keys), e.g. `deriveRng(seed, epoch, sampleIndex)`: a sample's
 * augmentation then depends only on its keys, not on which worker ran it or in what order.
 */
export function deriveRng(seed: number, ...keys: number[]): Rng {
  let h = splitmix32((seed >>> 0) ^ splitmix32((Math.floor(seed / 4294967296) >>> 0) ^ 0x27d4eb2f));
  for (const k of keys) {
    h = splitmix32(h ^ (k >>> 0));
    h = splitmix32(h ^ (Math.floor(k / 4294967296) >>> 0) ^ 0x165667b1);
  }
  const s: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) s[i] = h = splitmix32(h + i);
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  return new Rng({ s });
}


/**
 * Train-time augmentation (src/data/augment.ts): the seeded RNG, RandomResizedCrop geometry, RandomErasing
 * statistics, the factory's determinism, and every RandAugment op / ColorJitter enhancer against Debian's PIL
 * (references computed at test time by test/tools/augment_reference.py from small synthetic images).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  RAND_INCREASING_TRANSFORMS,
  RAND_TRANSFORMS,
  Rng,
  applyOp,
  brightness,
  color,
  colorJitter,
  contrast,
  deriveRng,
  hflip,
  isSignedOp,
  levelToArg,
  parseRandAugment,
  randAugment,
  randomErasing,
  resizedCrop,
  rrcParams,
  sharpness,
  toNormalizedTensor,
  trainTransform,
  vflip,
  type AugmentOpName,
  type Fill,
} from '../src/data/augment.js';
import type { PilFilter, RgbImage } from '../src/data/resize.js';
import { normalize, resolvePreprocess } from '../src/data/transforms.js';
import { REPO } from './helpers/fixtures.js';
import { describeOrSkip } from './helpers/skip.js';

const PYTHON = process.env['TSIMM_TEST_PYTHON'] ?? '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import PIL'], { encoding: 'utf8' });
const NO_PIL: string | false = probe.status === 0 ? false : `${PYTHON} with PIL is not installed (apt-get install python3-pil); .ci/run installs it`;

const CFG = { inputSize: [3, 32, 32] as [number, number, number], interpolation: 'bicubic' as const, mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number] };

/** A deterministic test image: gradients, hashed noise and saturated blocks (exercises clipping). */
function pattern(width: number, height: number, salt = 0): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const h = (Math.imul(y * width + x + salt * 7919, 2654435761) >>> 0) >>> 24;
      const block = ((x >> 3) + (y >> 3)) % 5;
      data[i] = block === 0 ? 255 : Math.round((x * 255) / (width - 1)) ^ (h & 15);
      data[i + 1] = block === 1 ? 0 : Math.round((y * 255) / (height - 1)) ^ ((h >> 2) & 31);
      data[i + 2] = (x * 7 + y * 13 + h) & 255;
    }
  }
  return { width, height, data };
}

/** Channels confined to different sub-ranges (autocontrast and contrast have work to do). */
function lowContrast(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const h = (Math.imul(i + 17, 2246822519) >>> 0) >>> 16;
    data[3 * i] = 40 + (h % 161);
    data[3 * i + 1] = 90 + ((h >> 3) % 61);
    data[3 * i + 2] = 128 + ((h >> 5) % 3);
  }
  return { width, height, data };
}

/** Uniform noise (hashed). */
function noise(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (Math.imul(i + 1, 2654435761) >>> 0) >>> 24;
  return { width, height, data };
}

/** Few values with skewed counts: equalize's last used bin maps to 256 and must clip to 255. */
function steps(): RgbImage {
  const width = 32;
  const height = 32;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const v = i < 600 ? 10 : i < 900 ? 100 : 200;
    data[3 * i] = v;
    data[3 * i + 1] = (v + i) & 255;
    data[3 * i + 2] = i < 1000 ? 60 : 61;
  }
  return { width, height, data };
}

function diff(a: Uint8Array, b: Uint8Array): { max: number; count: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let count = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d) count++;
    if (d > max) max = d;
  }
  return { max, count };
}

// ---------------------------------------------------------------------------------------------------------

describe('Rng', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 100 }, () => a.nextU32());
    assert.deepEqual(sa, Array.from({ length: 100 }, () => b.nextU32()));
    assert.notDeepEqual(sa, Array.from({ length: 100 }, () => c.nextU32()));
    assert.notDeepEqual(new Rng(2 ** 40).getState(), new Rng(0).getState(), 'high bits of the seed count');
  });

  it('saves and restores its state as plain numbers (JSON round trip)', () => {
    const r = new Rng(7);
    for (let i = 0; i < 37; i++) r.normal();
    const saved = JSON.parse(JSON.stringify(r.getState()));
    const next = [r.random(), r.int(0, 9), r.normal(), r.uniform(2, 3)];
    const restored = Rng.fromState(saved);
    assert.deepEqual([restored.random(), restored.int(0, 9), restored.normal(), restored.uniform(2, 3)], next);
    assert.throws(() => new Rng({ s: [0, 0, 0, 0] }), /all zero/);
    assert.throws(() => new Rng({ s: [1, 2, 3] as unknown as [number, number, number, number] }), /four uint32/);
  });

  it('has the right distributions', () => {
    const r = new Rng(1);
    const n = 20000;
    let sum = 0;
    let sq = 0;
    const counts = new Array(5).fill(0);
    for (let i = 0; i < n; i++) {
      const v = r.normal();
      sum += v;
      sq += v * v;
      counts[r.int(0, 4)]++;
      const u = r.random();
      assert.ok(u >= 0 && u < 1);
    }
    assert.ok(Math.abs(sum / n) < 0.03);
    assert.ok(Math.abs(sq / n - 1) < 0.04);
    for (const c of counts) assert.ok(Math.abs(c / n - 0.2) < 0.015, String(counts));
    assert.deepEqual([...r.permutation(6)].sort(), [0, 1, 2, 3, 4, 5]);
  });

  it('derives independent, reproducible streams per (seed, epoch, index)', () => {
    assert.deepEqual(deriveRng(5, 1, 2).getState(), deriveRng(5, 1, 2).getState());
    const states = new Set([deriveRng(5, 1, 2), deriveRng(5, 2, 1), deriveRng(5, 1, 3), deriveRng(6, 1, 2)].map((r) => r.getState().s.join()));
    assert.equal(states.size, 4);
  });
});

describe('RandomResizedCrop geometry', () => {
  it('crops inside the image with area and aspect in range, or falls back to the centre crop', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 600 }), fc.integer({ min: 0, max: 2 ** 31 }), (W, H, seed) => {
        const rng = new Rng(seed);
        for (let k = 0; k < 20; k++) {
          const b = rrcParams(W, H, [0.08, 1], [3 / 4, 4 / 3], rng);
          assert.ok(b.left >= 0 && b.top >= 0 && b.width >= 1 && b.height >= 1, JSON.stringify(b));
          assert.ok(b.left + b.width <= W && b.top + b.height <= H, JSON.stringify({ W, H, b }));
          if (!b.fallback) {
            // Each side is round(√(area·r)) or round(√(area/r)): within ½ of the unrounded sides.
            const A = W * H;
            assert.ok((b.width + 0.5) * (b.height + 0.5) >= 0.08 * A - 1e-9 && (b.width - 0.5) * (b.height - 0.5) <= A + 1e-9);
            assert.ok((b.width + 0.5) / Math.max(b.height - 0.5, 1e-9) >= 3 / 4 - 1e-9 && (b.width - 0.5) / (b.height + 0.5) <= 4 / 3 + 1e-9);
          } else {
            const r = W / H;
            const w = r > 4 / 3 ? Math.round(H * (4 / 3)) : W;
            const h = r < 3 / 4 ? Math.round(W / (3 / 4)) : H;
            assert.ok(Math.abs(b.width - w) <= 1 && Math.abs(b.height - h) <= 1, JSON.stringify({ W, H, b }));
            assert.equal(b.left, Math.floor((W - b.width) / 2));
            assert.equal(b.top, Math.floor((H - b.height) / 2));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('samples area uniformly and aspect log-uniformly (large image, few rejections)', () => {
    const rng = new Rng(3);
    const n = 4000;
    let logSum = 0;
    let fallbacks = 0;
    const areas: number[] = [];
    for (let i = 0; i < n; i++) {
      const b = rrcParams(2000, 2000, [0.08, 1], [3 / 4, 4 / 3], rng);
      if (b.fallback) fallbacks++;
      logSum += Math.log(b.width / b.height);
      areas.push((b.width * b.height) / 4e6);
    }
    assert.ok(Math.abs(logSum / n) < 0.02, 'log aspect symmetric about 0');
    assert.ok(fallbacks === 0, 'a square image always finds a crop within 10 attempts here');
    // A square image rejects area·r > 1 or area/r > 1: given acceptance, P(area < 0.3) = P(s < 0.3) / P(accept)
    // with P(accept) = (E[e^−|log r|] − 0.08) / 0.92 and E[e^−|log r|] = (1 − 3/4) / log(4/3).
    const expected = (0.22 / 0.92) / ((0.25 / Math.log(4 / 3) - 0.08) / 0.92);
    const small = areas.filter((a) => a < 0.3).length / n;
    assert.ok(Math.abs(small - expected) < 0.025, `P(area < 0.3) = ${small}, expected ${expected}`);
    assert.ok(Math.min(...areas) >= 0.0799 && Math.max(...areas) <= 1);
  });

  it('always produces the requested output size', () => {
    const t = trainTransform(CFG, { size: [24, 40], autoAugment: 'rand-m9-mstd0.5', reprob: 0.5 });
    const rng = new Rng(11);
    for (const [w, h] of [[50, 30], [3, 100], [1, 1], [300, 7]] as const) {
      const img = pattern(w, h);
      const a = t.augment(img, rng);
      assert.deepEqual([a.width, a.height, a.data.length], [40, 24, 40 * 24 * 3]);
      assert.equal(t(img, rng).length, 3 * 24 * 40);
    }
    const random = trainTransform(CFG, { interpolation: 'random', autoAugment: 'rand-m9-mstd0.5-p1' });
    for (let i = 0; i < 5; i++) assert.equal(random(pattern(45, 33), rng).length, 3 * 32 * 32);
  });
});

describe('trainTransform', () => {
  it('is deterministic for an RNG state, and resumes exactly from a saved state', () => {
    const img = pattern(61, 47);
    const opts = { autoAugment: 'rand-m9-mstd0.5', reprob: 0.25 };
    const run = (rng: Rng, k: number) => Array.from({ length: k }, () => trainTransform(CFG, opts)(img, rng));
    const a = run(new Rng(123), 6);
    assert.deepEqual(run(new Rng(123), 6), a);
    const r = new Rng(123);
    run(r, 3);
    const saved = JSON.parse(JSON.stringify(r.getState()));
    assert.deepEqual(run(Rng.fromState(saved), 3), a.slice(3));
    assert.notDeepEqual(run(new Rng(124), 1)[0], a[0]);
  });

  it("resolves timm's defaults", () => {
    const o = trainTransform(CFG).options;
    assert.deepEqual(o.size, [32, 32]);
    assert.deepEqual([o.scale, o.ratio, o.hflip, o.vflip, o.colorJitter, o.autoAugment, o.reprob, o.remode, o.recount], [[0.08, 1], [3 / 4, 4 / 3], 0.5, 0, [0.4, 0.4, 0.4], undefined, 0, 'pixel', 1]);
    assert.equal(o.interpolation, 'bicubic');
    assert.deepEqual(o.fill, [124, 116, 104], "timm's img_mean: round(255·mean)");
    // timm disables colour jitter under an auto-augment policy unless forced.
    assert.equal(trainTransform(CFG, { autoAugment: 'rand-m9-mstd0.5' }).options.colorJitter, null);
    assert.deepEqual(trainTransform(CFG, { autoAugment: 'rand-m9-mstd0.5', forceColorJitter: true }).options.colorJitter, [0.4, 0.4, 0.4]);
    assert.throws(() => trainTransform(CFG, { autoAugment: 'v0' }), /RandAugment/);
    assert.throws(() => trainTransform(CFG, { reprob: 2 }), /probability/);
    assert.throws(() => trainTransform(CFG, { autoAugment: 'rand-q3' }), /unknown RandAugment section/);
  });

  it('normalizes like ToTensor + Normalize (transforms.ts), writing into a batch at an offset', () => {
    const img = pattern(32, 32);
    const t = trainTransform(CFG, { scale: [1, 1], ratio: [1, 1], hflip: 0, colorJitter: 0 });
    const batch = new Float32Array(2 * 3 * 32 * 32);
    t(img, new Rng(0), batch, 3 * 32 * 32);
    const ref = normalize(img, resolvePreprocess({ ...CFG, tag: 't', cropPct: 1, cropMode: 'center', resizeBackend: 'pil' } as never));
    assert.deepEqual(batch.subarray(3 * 32 * 32), ref);
    assert.ok(batch.subarray(0, 3 * 32 * 32).every((v) => v === 0));
    assert.deepEqual(toNormalizedTensor(img, CFG.mean, CFG.std), ref);
  });

  it('is fast enough for training (224², RandAugment, erasing)', () => {
    const img = pattern(320, 256);
    const t = trainTransform({ ...CFG, inputSize: [3, 224, 224] }, { autoAugment: 'rand-m9-mstd0.5', reprob: 0.25 });
    const rng = new Rng(9);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) t(img, rng);
    const ms = (performance.now() - t0) / 10;
    assert.ok(ms < 400, `${ms.toFixed(1)} ms per image`);
  });
});

describe('RandAugment config and levels', () => {
  it("parses timm's config strings", () => {
    assert.deepEqual(parseRandAugment('rand-m9-mstd0.5'), { magnitude: 9, numLayers: 2, magnitudeStd: 0.5, magnitudeMax: 10, increasing: false, prob: 0.5 });
    assert.deepEqual(parseRandAugment('rand-m7-n3-mstd101-mmax12-inc1'), { magnitude: 7, numLayers: 3, magnitudeStd: Infinity, magnitudeMax: 12, increasing: true, prob: 0.5 });
    assert.equal(parseRandAugment('rand-inc0').increasing, true, "timm's bool('0') is True");
    assert.equal(parseRandAugment('rand-mstd').magnitudeStd, 0, 'a section without a digit is ignored');
    assert.equal(parseRandAugment('rand-w0').weightIdx, 0);
    assert.throws(() => parseRandAugment('augmix-m3'), /must start with 'rand'/);
    assert.throws(() => parseRandAugment('rand-m9.5'), /integer/);
    assert.throws(() => parseRandAugment('rand-w1'), /only w0/);
  });

  it("maps magnitudes to timm's arguments", () => {
    const at9: Partial<Record<AugmentOpName, number | undefined>> = {
      AutoContrast: undefined, Rotate: 27, Posterize: 3, PosterizeIncreasing: 1, Solarize: 230, SolarizeIncreasing: 26,
      SolarizeAdd: 99, Color: 1.72, ColorIncreasing: 1.81, ShearX: 0.27, TranslateXRel: 0.405,
    };
    for (const [name, v] of Object.entries(at9)) {
      const got = levelToArg(name as AugmentOpName, 9);
      if (v === undefined) assert.equal(got, undefined);
      else assert.ok(Math.abs(got! - v) < 1e-12, `${name}: ${got}`);
    }
    assert.ok(Math.abs(levelToArg('ContrastIncreasing', 9, true)! - 0.19) < 1e-12);
    assert.equal(levelToArg('BrightnessIncreasing', 10, true), 0.1, 'kept >= 0.1');
    assert.equal(levelToArg('SolarizeAdd', 20), 128, 'capped at 128 (mmax > 10)');
    assert.deepEqual(RAND_TRANSFORMS.filter(isSignedOp), ['Rotate', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel']);
  });

  it('applies n ops per image with probability p', () => {
    const img = pattern(20, 20);
    const ctx = { fill: [128, 128, 128] as Fill, interpolation: 'bilinear' as const };
    const never = randAugment('rand-m9-p0', ctx);
    assert.deepEqual(never(img, new Rng(1)).data, img.data);
    const always = randAugment('rand-m9-n2-p1', ctx);
    let changed = 0;
    for (let s = 0; s < 20; s++) if (diff(always(img, new Rng(s)).data, img.data).count > 0) changed++;
    assert.ok(changed >= 18, `${changed}/20 changed`);
    const weighted = randAugment('rand-m9-n2-w0-p1', ctx);
    assert.equal(weighted(img, new Rng(2)).data.length, img.data.length);
  });
});

describe('RandomErasing', () => {
  const C = 3;
  const H = 64;
  const W = 48;

  it("erases one box per sample with timm's area/aspect bounds and N(0, 1) pixels", () => {
    const rng = new Rng(5);
    const n = 1500;
    let erased = 0;
    let areaSum = 0;
    let sum = 0;
    let sq = 0;
    let values = 0;
    for (let i = 0; i < n; i++) {
      const x = new Float32Array(C * H * W).fill(7);
      const boxes = randomErasing(x, C, H, W, { probability: 1, mode: 'pixel' }, rng);
      if (!boxes.length) continue;
      erased++;
      assert.equal(boxes.length, 1);
      const b = boxes[0]!;
      assert.ok(b.width < W && b.height < H && b.top + b.height <= H && b.left + b.width <= W);
      const frac = (b.width * b.height) / (H * W);
      assert.ok(frac >= 0.012 && frac <= 0.36, `area ${frac}`);
      const aspect = b.height / b.width;
      assert.ok(aspect >= 0.2 && aspect <= 5, `aspect ${aspect}`);
      areaSum += frac;
      let changed = 0;
      for (let c = 0; c < C; c++) {
        for (let y = 0; y < H; y++) {
          for (let xx = 0; xx < W; xx++) {
            const v = x[c * H * W + y * W + xx]!;
            const inside = y >= b.top && y < b.top + b.height && xx >= b.left && xx < b.left + b.width;
            if (inside) {
              changed++;
              sum += v;
              sq += v * v;
              values++;
            } else assert.equal(v, 7);
          }
        }
      }
      assert.equal(changed, C * b.width * b.height);
    }
    assert.ok(erased / n > 0.97, `erased ${erased}/${n} (10 attempts rarely all fail)`);
    const meanArea = areaSum / erased;
    assert.ok(meanArea > 0.12 && meanArea < 0.2, `mean area ${meanArea}`);
    assert.ok(Math.abs(sum / values) < 0.01 && Math.abs(sq / values - 1) < 0.01, `mean ${sum / values}, var ${sq / values}`);
  });

  it('erases with the given probability; const and rand modes', () => {
    const rng = new Rng(6);
    let hits = 0;
    for (let i = 0; i < 2000; i++) if (randomErasing(new Float32Array(C * 8 * 8), C, 8, 8, { probability: 0.25, mode: 'pixel' }, rng).length) hits++;
    assert.ok(Math.abs(hits / 2000 - 0.25) < 0.04, `${hits}/2000`);
    const x = new Float32Array(C * H * W).fill(7);
    const [b] = randomErasing(x, C, H, W, { probability: 1, mode: 'const' }, new Rng(1));
    assert.equal(x.filter((v) => v === 0).length, C * b!.width * b!.height);
    const y = new Float32Array(C * H * W).fill(7);
    const [r] = randomErasing(y, C, H, W, { probability: 1, mode: 'rand' }, new Rng(1));
    for (let c = 0; c < C; c++) {
      const v = y[c * H * W + r!.top * W + r!.left]!;
      assert.equal(y.filter((u, i) => Math.floor(i / (H * W)) === c && u === v).length, r!.width * r!.height);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Against PIL

interface Case {
  label: string;
  image: number;
  ops: object[];
  ours: () => RgbImage;
  /** Largest difference allowed (0: exact). */
  tol: number;
}

describeOrSkip('RandAugment ops, ColorJitter enhancers, crop and flips against PIL', NO_PIL, () => {
  const images = [pattern(37, 29), lowContrast(23, 17), steps(), pattern(24, 24, 3), noise(64, 64)];
  const cases: Case[] = [];
  const add = (c: Case) => cases.push(c);
  const fill: Fill = [124, 116, 104];
  const ALL = [...new Set([...RAND_TRANSFORMS, ...RAND_INCREASING_TRANSFORMS])];
  for (const name of ALL) {
    const geometric = ['Rotate', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel'].includes(name);
    for (const level of [0, 2.7, 5, 9, 10]) {
      for (const negate of isSignedOp(name) ? [false, true] : [false]) {
        for (const resample of (geometric ? ['bilinear', 'bicubic'] : ['bilinear']) as PilFilter[]) {
          for (let image = 0; image < images.length; image++) {
            add({
              label: `${name} m${level}${negate ? ' negated' : ''} ${resample} on image ${image}`,
              image,
              ops: [{ op: 'timm', name, level, negate, fill, resample }],
              ours: () => applyOp(name, images[image]!, levelToArg(name, level, negate), { fill, filter: resample }),
              tol: 0,
            });
          }
        }
      }
    }
  }
  // Rotate's fast paths (90° on a square image, 180°) at magnitudes past 10 (mmax).
  for (const level of [30, 60, 90]) {
    add({ label: `Rotate m${level} (transpose fast path)`, image: 3, ops: [{ op: 'timm', name: 'Rotate', level, fill, resample: 'bicubic' }], ours: () => applyOp('Rotate', images[3]!, levelToArg('Rotate', level), { fill, filter: 'bicubic' }), tol: 0 });
  }
  const enhancers = { Brightness: brightness, Contrast: contrast, Color: color, Sharpness: sharpness } as const;
  // ColorJitter(0.4) draws float32 factors in [0.6, 1.4]; RandAugment uses [0.1, 1.9]; 0 and > 2 extrapolate.
  for (const [kind, fn] of Object.entries(enhancers)) {
    for (const factor of [0, 0.1, Math.fround(0.6123), 0.75, 1, Math.fround(1.2345), 1.4, 1.9, 2.5]) {
      for (let image = 0; image < 3; image++) {
        add({ label: `${kind}(${factor}) on image ${image}`, image, ops: [{ op: 'enhance', kind, factor }], ours: () => fn(images[image]!, factor), tol: 0 });
      }
    }
  }
  // Many float32 factors on dense noise (every value, every difference), where float32 rounding shows.
  const fr = new Rng(99);
  for (const [kind, fn] of Object.entries(enhancers)) {
    for (let k = 0; k < 12; k++) {
      const factor = Math.fround(fr.uniform(0, 2.2));
      add({ label: `${kind}(${factor}) on noise`, image: 4, ops: [{ op: 'enhance', kind, factor }], ours: () => fn(images[4]!, factor), tol: 0 });
    }
  }
  // A whole ColorJitter draw: the same factors and order chained in PIL.
  for (let seed = 0; seed < 6; seed++) {
    const rng = new Rng(seed);
    const probe = rng.clone();
    const order = probe.permutation(4);
    const f = [0, 1, 2].map(() => Math.fround(probe.uniform(0.6, 1.4)));
    const kinds = ['Brightness', 'Contrast', 'Color'];
    const ops = order.filter((i) => i < 3).map((i) => ({ op: 'enhance', kind: kinds[i], factor: f[i] }));
    add({ label: `ColorJitter(0.4) seed ${seed}`, image: 0, ops, ours: () => colorJitter(images[0]!, { brightness: 0.4, contrast: 0.4, saturation: 0.4 }, rng), tol: 0 });
  }
  // RandomResizedCrop's crop + PIL resize, and the flips.
  for (let seed = 0; seed < 8; seed++) {
    const box = rrcParams(37, 29, [0.08, 1], [3 / 4, 4 / 3], new Rng(seed));
    for (const resample of ['bilinear', 'bicubic'] as PilFilter[]) {
      const [w, h] = seed % 2 ? [16, 16] : [40, 21];
      add({ label: `resized crop ${JSON.stringify(box)} → ${w}x${h} ${resample}`, image: 0, ops: [{ op: 'resized_crop', box: [box.top, box.left, box.height, box.width], size: [w, h], resample }], ours: () => resizedCrop(images[0]!, box, w, h, resample), tol: 0 });
    }
  }
  add({ label: 'hflip', image: 0, ops: [{ op: 'hflip' }], ours: () => hflip(images[0]!), tol: 0 });
  add({ label: 'vflip', image: 0, ops: [{ op: 'vflip' }], ours: () => vflip(images[0]!), tol: 0 });

  let refs: RgbImage[] = [];
  before(() => {
    const req = {
      images: images.map((i) => ({ width: i.width, height: i.height, data: Buffer.from(i.data).toString('base64') })),
      cases: cases.map((c) => ({ image: c.image, ops: c.ops })),
    };
    const r = spawnSync(PYTHON, [join(REPO, 'test/tools/augment_reference.py')], { input: JSON.stringify(req), encoding: 'utf8', maxBuffer: 1 << 28 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { outputs: { width: number; height: number; data: string }[] };
    refs = out.outputs.map((o) => ({ width: o.width, height: o.height, data: new Uint8Array(Buffer.from(o.data, 'base64')) }));
  });

  const groups = new Map<string, Case[]>();
  for (const c of cases) {
    const key = c.label.split(/[ (]/)[0]!;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  for (const [key, group] of groups) {
    it(`${key}: matches PIL (${group.length} cases)`, () => {
      const failures: string[] = [];
      for (const c of group) {
        const ref = refs[cases.indexOf(c)]!;
        const ours = c.ours();
        assert.deepEqual([ours.width, ours.height], [ref.width, ref.height], c.label);
        const d = diff(ours.data, ref.data);
        if (d.max > c.tol) failures.push(`${c.label}: max ${d.max}, ${d.count} values differ`);
      }
      assert.deepEqual(failures, []);
    });
  }
});

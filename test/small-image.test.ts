/**
 * The small-image training recipe (pad + random crop, src/data/small-image.ts), the size-dependent defaults of
 * `tsimm train`, and the loader's decoded-image cache.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { imageFolder } from '../src/data/datasets.js';
import { DataLoader, evalTransform } from '../src/data/loader.js';
import { resolvePreprocess } from '../src/data/transforms.js';
import { crop, resizePil, type RgbImage } from '../src/data/resize.js';
import { defaultPadding, padCrop, smallImageTransform, trainRecipeDefaults } from '../src/data/small-image.js';
import { makeTransform } from '../src/data/train-transform.js';
import { decodeSimplePng } from '../src/node/png.js';
import { simdPasses } from '../src/data/resize-simd.js';
import { decodeImage } from '../src/data/preprocess.js';
import { deriveRng } from '../src/data/augment.js';
import { createModel } from '../src/model.js';

function noise(w: number, h: number, seed: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  let x = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i] = x >>> 24;
  }
  return { width: w, height: h, data };
}

describe('small-image recipe', () => {
  it('pad + random crop is the resized image shifted by at most the padding, zero-filled, every shift drawn', () => {
    const img = noise(28, 28, 1);
    const resized = resizePil(img, 32, 32, 'bicubic');
    const seen = new Set<string>();
    const candidates: [string, Uint8Array][] = [];
    for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) candidates.push([`${dx},${dy}`, crop(resized, dx, dy, 32, 32, 0).data]);
    for (let k = 0; k < 1500; k++) {
      const out = padCrop(img, 32, 32, 4, 'bicubic', deriveRng(7, 0, k));
      // Find the shift that explains the output: exactly one in [-4, 4]².
      const shifts = candidates.filter(([, d]) => d.every((v, i) => v === out.data[i])).map(([s]) => s);
      assert.equal(shifts.length, 1, `sample ${k}: ${shifts.length} shifts match`);
      seen.add(shifts[0]!);
    }
    assert.equal(seen.size, 81, 'all 9×9 shifts occur');
    assert.deepEqual(padCrop(img, 32, 32, 0, 'bicubic', deriveRng(7, 0, 0)).data, resized.data, 'padding 0 is the resize alone');
  });

  it('the transform is deterministic in (seed, epoch, index) and keeps most of the object (unlike RandomResizedCrop)', () => {
    // A bright 20×20 square on black, 28 px: after pad-crop at 32 px the square keeps all its area.
    const img: RgbImage = { width: 28, height: 28, data: new Uint8Array(28 * 28 * 3) };
    for (let y = 4; y < 24; y++) for (let x = 4; x < 24; x++) img.data.fill(255, (y * 28 + x) * 3, (y * 28 + x) * 3 + 3);
    const cfg = { inputSize: [3, 32, 32], interpolation: 'bilinear' as const, mean: [0, 0, 0], std: [1, 1, 1] };
    const t = smallImageTransform(cfg, { colorJitter: 0 });
    let minBright = Infinity;
    for (let k = 0; k < 50; k++) {
      const a = t(img, deriveRng(1, 2, k));
      assert.deepEqual(a, t(img, deriveRng(1, 2, k)));
      let bright = 0;
      for (let i = 0; i < 32 * 32; i++) bright += a[i]! > 0.5 ? 1 : 0;
      minBright = Math.min(minBright, bright);
    }
    // 20 px of 28 is ~23 px at 32: ~530 bright pixels, all inside the crop for a shift of at most 4.
    assert.ok(minBright > 450, `the square lost area: ${minBright} bright pixels`);
    const m = makeTransform({ seed: 1, size: [32, 32], interpolation: 'bilinear', mean: [0, 0, 0], std: [1, 1, 1], crop: 'pad', padding: 4, colorJitter: 0 });
    assert.deepEqual(m(img, 5, 2), t(img, deriveRng(1, 2, 5)), 'the loader module builds the same transform');
  });

  it('defaults by size: pad + crop at <= 64 px, RandomResizedCrop above or when --scale/--ratio is given', () => {
    assert.deepEqual([trainRecipeDefaults(32, {}).crop, trainRecipeDefaults(32, {}).padding, trainRecipeDefaults(32, {}).colorJitter, trainRecipeDefaults(32, {}).evalCropPct], ['pad', 4, 0, 1]);
    assert.equal(trainRecipeDefaults(64, {}).padding, defaultPadding(64));
    assert.equal(trainRecipeDefaults(65, {}).crop, 'random-resized');
    assert.equal(trainRecipeDefaults(224, {}).colorJitter, 0.4);
    assert.equal(trainRecipeDefaults(32, { scale: true }).crop, 'random-resized');
    assert.equal(trainRecipeDefaults(32, { padding: 0, hflip: 0 }).padding, 0);
    assert.match(trainRecipeDefaults(32, {}).note, /pad 4 px \+ random 32 px crop/);
    assert.equal(trainRecipeDefaults(32, {}, 5).padding, 0, 'short runs: no shift');
    assert.equal(trainRecipeDefaults(32, { padding: 3 }, 5).padding, 3);
    assert.equal(trainRecipeDefaults(32, {}, 10).padding, 4);
  });
});

describe('decoded-image cache', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tsimm-cache-'));
    for (const c of ['a', 'b']) {
      mkdirSync(join(dir, c));
      for (let i = 0; i < 6; i++) {
        const img = noise(20, 20, i + (c === 'a' ? 0 : 100));
        await sharp(Buffer.from(img.data), { raw: { width: 20, height: 20, channels: 3 } }).png().toFile(join(dir, c, `${i}.png`));
      }
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const workers of [0, 2]) {
    it(`'on' serves later epochs from memory, 'off' decodes again (workers ${workers})`, async () => {
      const pre = resolvePreprocess(createModel('resnet18', { numClasses: 2 }).cfg, { size: 16 });
      const ds = await imageFolder(dir);
      const make = (cache: 'on' | 'off') => new DataLoader(ds, { batchSize: 4, shape: [3, 16, 16], transform: evalTransform(pre), shuffle: false, workers, cache });
      const on = make('on');
      const off = make('off');
      const collect = async (l: DataLoader, e: number) => {
        const out: Float32Array[] = [];
        for await (const b of l.epoch(e)) out.push(b.data);
        return out;
      };
      try {
        const first = await collect(on, 0);
        await collect(off, 0);
        // The files go away: the cached loader still has every image, the other one skips them all.
        const moved = `${dir}-moved`;
        const { renameSync } = await import('node:fs');
        renameSync(dir, moved);
        try {
          assert.deepEqual(await collect(on, 1), first);
          assert.equal(on.bad.size, 0);
          assert.deepEqual(await collect(off, 1), []);
          assert.equal(off.bad.size, 12);
        } finally {
          renameSync(moved, dir);
        }
      } finally {
        await on.close();
        await off.close();
      }
    });
  }
});

describe('PIL resize, WebAssembly SIMD passes', () => {
  it('give the bytes of the JavaScript passes (down, up, one axis, 1-pixel edges, both filters)', { skip: simdPasses() ? false : 'no WebAssembly SIMD here' }, () => {
    const sizes = [[500, 375, 341, 256], [28, 28, 32, 32], [75, 56, 300, 224], [7, 5, 3, 9], [100, 1, 37, 1], [1, 100, 1, 37], [64, 48, 64, 30], [64, 48, 30, 48], [3, 3, 1, 1], [1, 1, 5, 5], [333, 211, 17, 250]];
    for (const [w, h, ow, oh] of sizes) {
      const img = noise(w!, h!, w! * 31 + h!);
      for (const f of ['bilinear', 'bicubic'] as const) {
        const a = resizePil(img, ow!, oh!, f);
        const b = resizePil(img, ow!, oh!, f, { simd: false });
        assert.ok(a.data.length === b.data.length && a.data.every((v, i) => v === b.data[i]), `${w}x${h} -> ${ow}x${oh} ${f}`);
      }
    }
  });
});

describe('PNG fast path', () => {
  it('decodes 8-bit gray, gray+alpha, RGB and RGBA PNGs (every row filter) to the pixels sharp gives; leaves the rest to sharp', async () => {
    const w = 37;
    const h = 23;
    // Smooth gradients plus noise, so the encoder's adaptive filtering picks several filter types.
    const make = (channels: number) => {
      const d = new Uint8Array(w * h * channels);
      const n = noise(w, h, channels);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < channels; c++) d[(y * w + x) * channels + c] = (x * 5 + y * 3 + c * 40 + (n.data[(y * w + x) * 3 + (c % 3)]! >> 4)) & 255;
      return d;
    };
    for (const channels of [1, 2, 3, 4] as const) {
      for (const opts of [{ adaptiveFiltering: true, compressionLevel: 9 }, { adaptiveFiltering: false, compressionLevel: 1 }]) {
        const png = await sharp(Buffer.from(make(channels)), { raw: { width: w, height: h, channels } }).png(opts).toBuffer();
        const fast = decodeSimplePng(png);
        assert.ok(fast, `channels ${channels} ${JSON.stringify(opts)}: fast path taken`);
        const ref = await decodeImage(png, { exifRotate: false, maxPixels: 1e9 });
        assert.deepEqual([fast.width, fast.height], [ref.width, ref.height]);
        assert.ok(fast.data.every((v, i) => v === ref.data[i]), `channels ${channels} ${JSON.stringify(opts)}: pixels differ`);
      }
    }
    const rgb = await sharp(Buffer.from(make(3)), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
    assert.equal(decodeSimplePng(await sharp(Buffer.from(make(3)), { raw: { width: w, height: h, channels: 3 } }).png({ palette: true }).toBuffer()), undefined, 'palette: sharp');
    assert.equal(decodeSimplePng(await sharp(Buffer.from(make(3)), { raw: { width: w, height: h, channels: 3 } }).png({ progressive: true }).toBuffer()), undefined, 'interlaced: sharp');
    assert.equal(decodeSimplePng(rgb, 100), undefined, 'over the pixel limit: sharp (which names the limit)');
    const bad = Uint8Array.from(rgb);
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 0xff;
    assert.equal(decodeSimplePng(bad), undefined, 'a bad CRC: sharp (which names the error)');
    assert.equal(decodeSimplePng(rgb.subarray(0, rgb.length - 30)), undefined, 'truncated: sharp');
  });
});

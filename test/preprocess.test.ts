/**
 * Preprocessing parity with the references (PIL 9.4 / torchvision 0.14, OpenCV 4.6) on the shared photos,
 * decoding of every supported kind of file, and the errors for bad ones.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import sharp, { type Sharp } from 'sharp';
import { decodeImage, normalize, preprocessImage, resolvePreprocess, transformImage, type PreprocessConfig } from '../src/data/preprocess.js';
import { resizeCv2Linear, resizePil } from '../src/data/resize.js';
import { resolveModel } from '../src/models/index.js';
import { readNpy } from '../src/node/npy.js';
import { InputError } from '../src/weights/tensor.js';
import { NO_SHARED, SHARED } from './helpers/fixtures.js';
import { describeOrSkip } from './helpers/skip.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-pre-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Pipeline {
  kind: 'pil' | 'cv2';
  size: number;
  crop_pct_or_short: number;
  interpolation: 'bilinear' | 'bicubic';
}

function configOf(p: Pipeline): PreprocessConfig {
  const base = { size: [p.size, p.size] as [number, number], cropMode: 'center' as const, interpolation: p.interpolation, mean: [0.485, 0.456, 0.406] as [number, number, number], std: [0.229, 0.224, 0.225] as [number, number, number], maxPixels: 1e9 };
  return p.kind === 'pil'
    ? { ...base, backend: 'pil', cropPct: p.crop_pct_or_short, exifRotate: false }
    : { ...base, backend: 'cv2', cropPct: p.size / p.crop_pct_or_short, resizeShort: p.crop_pct_or_short, exifRotate: true };
}

describeOrSkip('parity with the reference pipelines on the shared photos', NO_SHARED, () => {
  const index = NO_SHARED ? { images: {}, pipelines: {} } : JSON.parse(readFileSync(join(SHARED, 'data/preprocess/index.json'), 'utf8'));
  for (const [file, info] of Object.entries<{ pipelines: string[]; exif_orientation: number }>(index.images)) {
    it(`${file}${info.exif_orientation !== 1 ? ` (EXIF orientation ${info.exif_orientation})` : ''}`, async (t) => {
      const diffs: string[] = [];
      for (const name of info.pipelines) {
        const p = index.pipelines[name] as Pipeline;
        const config = configOf(p);
        const img = transformImage(await decodeImage(join(SHARED, 'data/images', file), config), config);
        const ref = readNpy(join(SHARED, 'data/preprocess', file.replace(/\.JPEG$/, ''), `${name}.npy`));
        assert.deepEqual(ref.shape, [img.height, img.width, 3]);
        let max = 0;
        for (let i = 0; i < ref.data.length; i++) max = Math.max(max, Math.abs(img.data[i]! - ref.data[i]!));
        diffs.push(`${name} ${max}`);
        // PIL must match exactly; the spec allows OpenCV ±1 (we reproduce its SIMD rounding and reach 0).
        assert.ok(max <= (p.kind === 'pil' ? 0 : 1), `${name}: max |diff| ${max}`);
        // The float tensor is the reference's own arithmetic on those pixels.
        const x = normalize(img, config);
        const c = 1;
        const px = 1234;
        const expected = p.kind === 'pil' ? Math.fround(Math.fround(Math.fround(ref.data[3 * px + c]! / 255) - Math.fround(0.456)) / Math.fround(0.224)) : Math.fround(Math.fround(Math.fround(ref.data[3 * px + c]! * Math.fround(1 / 255)) - Math.fround(0.456)) / Math.fround(0.224));
        assert.equal(x[c * img.width * img.height + px], expected);
      }
      t.diagnostic(`max |diff| per pipeline: ${diffs.join(', ')}`);
    });
  }
});

describe('decoding', () => {
  const rgb = Buffer.from(Uint8Array.from({ length: 6 * 4 * 3 }, (_, i) => (i * 37) % 256));
  const make = (name: string, s: Sharp) => s.toFile(join(dir, name)).then(() => join(dir, name));

  it('reads PNG (with alpha), WebP (lossless), TIFF and GIF, grayscale replicated', async () => {
    const png = await make('a.png', sharp(rgb, { raw: { width: 6, height: 4, channels: 3 } }).ensureAlpha(0.5).png());
    const cfg = { exifRotate: false, maxPixels: 1e9 };
    assert.deepEqual((await decodeImage(png, cfg)).data, new Uint8Array(rgb), 'alpha dropped, colour untouched');
    const webp = await make('a.webp', sharp(rgb, { raw: { width: 6, height: 4, channels: 3 } }).webp({ lossless: true }));
    assert.deepEqual((await decodeImage(webp, cfg)).data, new Uint8Array(rgb));
    const tiff = await make('a.tiff', sharp(rgb, { raw: { width: 6, height: 4, channels: 3 } }).tiff({ compression: 'lzw' }));
    assert.deepEqual((await decodeImage(tiff, cfg)).data, new Uint8Array(rgb));
    const gray = await make('g.png', sharp(Buffer.from([0, 50, 100, 150, 200, 250]), { raw: { width: 3, height: 2, channels: 1 } }).png());
    assert.deepEqual(Array.from((await decodeImage(gray, cfg)).data.slice(0, 6)), [0, 0, 0, 50, 50, 50]);
    const gif = await make('a.gif', sharp(rgb, { raw: { width: 6, height: 4, channels: 3 } }).gif());
    const g = await decodeImage(gif, cfg);
    assert.deepEqual([g.width, g.height, g.data.length], [6, 4, 72]);
  });

  it('applies EXIF orientation only when asked (OpenCV does, PIL does not)', async () => {
    const jpg = await make('rot.jpg', sharp(rgb, { raw: { width: 6, height: 4, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }));
    const off = await decodeImage(jpg, { exifRotate: false, maxPixels: 1e9 });
    const on = await decodeImage(jpg, { exifRotate: true, maxPixels: 1e9 });
    assert.deepEqual([off.width, off.height, on.width, on.height], [6, 4, 4, 6]);
  });

  it('gives one clear error for a truncated JPEG, an empty file, a non-image and a missing file', async () => {
    const jpg = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 10, b: 10 } } }).jpeg().toBuffer();
    writeFileSync(join(dir, 'cut.jpg'), jpg.subarray(0, jpg.length >> 1));
    writeFileSync(join(dir, 'empty.jpg'), '');
    writeFileSync(join(dir, 'text.jpg'), 'not an image');
    const cfg = { exifRotate: false, maxPixels: 1e9 };
    await assert.rejects(decodeImage(join(dir, 'cut.jpg'), cfg), (e: unknown) => e instanceof InputError && /truncated or corrupt/.test(e.message));
    await assert.rejects(decodeImage(join(dir, 'empty.jpg'), cfg), (e: unknown) => e instanceof InputError && /not an image/.test(e.message));
    await assert.rejects(decodeImage(join(dir, 'text.jpg'), cfg), (e: unknown) => e instanceof InputError && /not an image/.test(e.message));
    await assert.rejects(decodeImage(join(dir, 'nope.jpg'), cfg), InputError);
  });

  it('refuses a 50000 x 50000 image from its header, before decoding', async () => {
    // A PNG whose header claims 50000x50000 (the data would never fit in memory).
    const crc = (b: Buffer) => {
      let c = ~0;
      for (const x of b) {
        c ^= x;
        for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
      }
      return ~c >>> 0;
    };
    const chunk = (type: string, data: Buffer) => {
      const t = Buffer.concat([Buffer.from(type), data]);
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      t.copy(out, 4);
      out.writeUInt32BE(crc(t), 8 + data.length);
      return out;
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(50000, 0);
    ihdr.writeUInt32BE(50000, 4);
    ihdr.set([8, 2, 0, 0, 0], 8);
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
    writeFileSync(join(dir, 'huge.png'), png);
    const t0 = performance.now();
    await assert.rejects(decodeImage(join(dir, 'huge.png'), { exifRotate: false, maxPixels: 178_956_970 }), /50000x50000 \(2500 MP\), over the 179 MP limit; raise it with --max-pixels/);
    assert.ok(performance.now() - t0 < 2000);
  });
});

describe('resize kernels and geometry', () => {
  const constant = { width: 40, height: 30, data: new Uint8Array(40 * 30 * 3).fill(77) };
  it('keep a constant image constant (weights sum to one in fixed point)', () => {
    for (const f of ['bilinear', 'bicubic'] as const) assert.ok(resizePil(constant, 13, 17, f).data.every((v) => v === 77));
    assert.ok(resizeCv2Linear(constant, 13, 17).data.every((v) => v === 77));
  });
  it('halve exactly with OpenCV INTER_AREA rounding on an exact 2x', () => {
    const img = { width: 2, height: 2, data: Uint8Array.from([0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2]) };
    assert.deepEqual(Array.from(resizeCv2Linear(img, 1, 1).data), [(0 + 1 + 2 + 2 + 2) >> 2, (0 + 1 + 2 + 2 + 2) >> 2, (0 + 1 + 2 + 2 + 2) >> 2]);
  });
  it('follow each source: timm floor(size/crop_pct) short side, PaddleClas resize_short 256 and floor offsets', () => {
    const timm = resolvePreprocess(resolveModel('tf_efficientnet_b3').cfg);
    assert.deepEqual([timm.backend, timm.interpolation, timm.cropPct, timm.size], ['pil', 'bicubic', 0.904, [300, 300]]);
    const paddle = resolvePreprocess(resolveModel('EfficientNetB3').cfg);
    assert.deepEqual([paddle.backend, paddle.interpolation, paddle.resizeShort, paddle.exifRotate], ['cv2', 'bilinear', 332, true]);
    const img = { width: 500, height: 326, data: new Uint8Array(500 * 326 * 3) };
    assert.deepEqual([transformImage(img, timm).width, transformImage(img, paddle).height], [300, 300]);
    const squash = transformImage(img, { ...timm, cropMode: 'squash' });
    assert.deepEqual([squash.width, squash.height], [300, 300]);
    const border = transformImage({ ...img, data: new Uint8Array(500 * 326 * 3).fill(9) }, { ...timm, cropMode: 'border', cropPct: 1 });
    assert.equal(border.data[0], 0, 'border mode pads with black');
    assert.equal(border.data[150 * 300 * 3 + 150 * 3], 9);
  });
  it('writes the tensor the model sees', async () => {
    const file = join(dir, 'p.png');
    await sharp({ create: { width: 80, height: 60, channels: 3, background: { r: 255, g: 0, b: 128 } } }).png().toFile(file);
    const config = resolvePreprocess(resolveModel('resnet50d').cfg, { size: 32 });
    const x = await preprocessImage(file, config);
    assert.equal(x.length, 3 * 32 * 32);
    assert.equal(x[0], Math.fround(Math.fround(1 - Math.fround(0.485)) / Math.fround(0.229)));
  });
});

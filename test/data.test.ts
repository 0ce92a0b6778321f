/**
 * The training data layer: IDX files (round trip, typed errors for bad ones), Fashion-MNIST from Debian's
 * package, ImageFolder and CSV datasets, the validation split, and the worker-thread DataLoader.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { checkSameClasses, csvList, decodeSample, grayToRgb, idxDataset, imageFolder, openDataset, rgbToGray, TrainDataset, valSplit, type GrayImages } from '../src/data/datasets.js';
import { encodeIdx, fashionMnistDir, FASHION_MNIST_CLASSES, findIdxFiles, IdxError, parseIdx, readIdx, readIdxPair, writeIdx } from '../src/data/idx.js';
import { Rng } from '../src/util/rng.js';
import { DataLoader, evalTransform, type Batch } from '../src/data/loader.js';
import { normalize, transformImage, type PreprocessConfig } from '../src/data/transforms.js';
import { InputError } from '../src/weights/tensor.js';

const dir = mkdtempSync(join(tmpdir(), 'tsimm-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A typed one-line error naming `file` and matching `re`. */
function idxFails(re: RegExp, file?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof IdxError, `expected IdxError, got ${e}`);
    assert.ok(e instanceof InputError);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.match(e.message, re);
    if (file) assert.ok(e.message.includes(file), `names ${file}: ${e.message}`);
    return true;
  };
}

describe('IDX files', () => {
  const images = Uint8Array.from({ length: 5 * 4 * 3 }, (_, i) => (i * 7) % 256);
  const labels = Uint8Array.from([3, 1, 4, 1, 5]);

  for (const gz of [false, true]) {
    it(`round trip, ${gz ? 'gzipped' : 'plain'}`, async () => {
      const ext = gz ? '.gz' : '';
      const im = join(dir, `rt-images-idx3-ubyte${ext}`);
      const lb = join(dir, `rt-labels-idx1-ubyte${ext}`);
      writeIdx(im, 'uint8', [5, 4, 3], images);
      writeIdx(lb, 'uint8', [5], labels);
      if (gz) assert.equal(readFileSync(im)[0], 0x1f);
      const a = await readIdx(im);
      assert.deepEqual(a.dims, [5, 4, 3]);
      assert.equal(a.dtype, 'uint8');
      assert.deepEqual(Array.from(a.data), Array.from(images));
      const cut = await readIdx(im, { limit: 2 });
      assert.deepEqual(cut.dims, [2, 4, 3]);
      assert.deepEqual(Array.from(cut.data), Array.from(images.subarray(0, 24)));
      const pair = await readIdxPair(im, lb, { limit: 3 });
      assert.equal(pair.count, 3);
      assert.deepEqual([pair.height, pair.width], [4, 3]);
      assert.deepEqual(Array.from(pair.labels.data), [3, 1, 4]);
      for (const dtype of ['int8', 'int16', 'int32', 'float32', 'float64'] as const) {
        const f = join(dir, `rt-${dtype}.idx${ext}`);
        const v = dtype === 'float32' || dtype === 'float64' ? [0.5, -1.25, 3, 1e-3] : [-3, 2, 100, -100];
        writeIdx(f, dtype, [2, 2], v);
        const r = await readIdx(f);
        assert.equal(r.dtype, dtype);
        assert.deepEqual(Array.from(r.data), dtype === 'float32' ? v.map(Math.fround) : v);
      }
    });
  }

  it('finds torchvision and Debian layouts', async () => {
    const root = join(dir, 'tv');
    mkdirSync(join(root, 'FashionMNIST', 'raw'), { recursive: true });
    writeIdx(join(root, 'FashionMNIST', 'raw', 't10k-images-idx3-ubyte'), 'uint8', [5, 4, 3], images);
    writeIdx(join(root, 'FashionMNIST', 'raw', 't10k-labels-idx1-ubyte.gz'), 'uint8', [5], labels);
    const f = findIdxFiles(root, 'test');
    assert.match(f.images, /t10k-images-idx3-ubyte$/);
    assert.match(f.labels, /t10k-labels-idx1-ubyte\.gz$/);
    assert.throws(() => findIdxFiles(root, 'train'), idxFails(/no train-images-idx3-ubyte\[\.gz\] and train-labels-idx1-ubyte\[\.gz\].*apt-get install dataset-fashion-mnist/, root));
    const ds = await idxDataset(root, { split: 'test' });
    assert.equal(ds.kind, 'idx');
    assert.deepEqual(ds.classes, FASHION_MNIST_CLASSES.slice(), 'a path saying FashionMNIST gets its class names');
    assert.deepEqual(Array.from(ds.targets()), [3, 1, 4, 1, 5]);
    assert.ok(ds.gray!.data.buffer instanceof SharedArrayBuffer);
    const digits = await idxDataset(join(root, 'FashionMNIST', 'raw'), { split: 'test', classes: 'mnist' });
    assert.equal(digits.classes[3], '3');
    await assert.rejects(idxDataset(root, { split: 'test', classes: ['a', 'b'] }), /label 3 of image 0 is outside the 2 classes/);
  });

  it('bad files give typed one-line errors naming the file', async () => {
    const good = encodeIdx('uint8', [10, 2, 2], new Uint8Array(40));
    const cases: [string, Uint8Array, RegExp][] = [
      ['magic', Uint8Array.from([0x50, 0x4b, 3, 4, ...good.subarray(4)]), /bad IDX magic 0x504b0304/],
      ['dtype', Uint8Array.from([0, 0, 0x07, 3, ...good.subarray(4)]), /unknown IDX dtype code 0x07/],
      ['ndims0', Uint8Array.from([0, 0, 0x08, 0]), /0 dimensions/],
      ['short', Uint8Array.from([0, 0, 0x08]), /too short for an IDX header/],
      ['shorthead', good.subarray(0, 9), /too short for an IDX header/],
      ['truncated', good.subarray(0, good.length - 1), /truncated/],
      ['trailing', Uint8Array.from([...good, 0]), /trailing bytes/],
      // 4e9 × 4e9 × 1: a header that, believed, would allocate exabytes.
      ['lying', Uint8Array.from([0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]), /over the 1024\.0 MiB limit/],
      ['lying-small', Uint8Array.from([0, 0, 8, 1, 0, 1, 0, 0, 1, 2, 3]), /promises .*65536.*truncated/],
    ];
    for (const [name, bytes, re] of cases) {
      for (const gz of [false, true]) {
        const f = join(dir, `bad-${name}${gz ? '.gz' : ''}`);
        writeFileSync(f, gz ? gzipSync(bytes) : bytes);
        await assert.rejects(readIdx(f), idxFails(re, f), `${name} ${gz ? 'gz' : 'plain'}`);
      }
    }
    // A gzip bomb: the header promises 40 bytes, the stream inflates to 20 MB (stopped, not buffered whole).
    const bomb = join(dir, 'bomb.gz');
    writeFileSync(bomb, gzipSync(Buffer.concat([good, Buffer.alloc(20 << 20)])));
    await assert.rejects(readIdx(bomb), idxFails(/inflates to more than the 56 bytes/, bomb));
    // A cut gzip stream, and a corrupt one.
    const z = gzipSync(encodeIdx('uint8', [100, 28, 28], Uint8Array.from({ length: 78400 }, (_, i) => (i * 31) % 251)));
    const cut = join(dir, 'cut.gz');
    writeFileSync(cut, z.subarray(0, z.length >> 1));
    await assert.rejects(readIdx(cut), idxFails(/gzip stream is corrupt or truncated|truncated/, cut));
    const flipped = Buffer.from(z);
    for (let i = 20; i < 60; i++) flipped[i] = flipped[i]! ^ 0x5a;
    const corrupt = join(dir, 'corrupt.gz');
    writeFileSync(corrupt, flipped);
    await assert.rejects(readIdx(corrupt), idxFails(/corrupt|truncated|promises/, corrupt));
    await assert.rejects(readIdx(join(dir, 'absent-idx3-ubyte')), idxFails(/no such file/, 'absent-idx3-ubyte'));
    await assert.rejects(readIdx(dir), idxFails(/is a directory/));
    // A pair that does not match.
    const im = join(dir, 'pm-images');
    const lb = join(dir, 'pm-labels');
    writeIdx(im, 'uint8', [3, 2, 2], new Uint8Array(12));
    writeIdx(lb, 'uint8', [4], new Uint8Array(4));
    await assert.rejects(readIdxPair(im, lb), idxFails(/holds 3 images but .* holds 4 labels/, im));
    await assert.rejects(readIdxPair(lb, im), idxFails(/expected uint8 images \[N, H, W\]/, lb));
  });

  it('mutated files: a parse or a typed error, nothing else', async () => {
    const rng = new Rng(11);
    const seed = encodeIdx('uint8', [6, 3, 2], Uint8Array.from({ length: 36 }, (_, i) => i));
    const mutate = () => {
      const b = Uint8Array.from(seed);
      const kind = rng.int(0, 3);
      if (kind === 0) for (let k = rng.int(1, 4); k > 0; k--) b[rng.int(0, 20)] = rng.int(0, 256);
      if (kind === 1) return b.subarray(0, rng.int(0, b.length));
      if (kind === 2) return Uint8Array.from([...b, ...new Uint8Array(rng.int(1, 9))]);
      return b;
    };
    for (let i = 0; i < 400; i++) {
      const b = mutate();
      try {
        const r = parseIdx(b, 'fuzz');
        assert.equal(r.data.length, r.dims.reduce((x, y) => x * y, 1));
      } catch (e) {
        assert.ok(e instanceof IdxError, `mutation ${i}: ${e}`);
      }
      if (i % 10 === 0) {
        const f = join(dir, 'fuzz.gz');
        writeFileSync(f, gzipSync(b));
        await readIdx(f).catch((e) => assert.ok(e instanceof IdxError, `gz mutation ${i}: ${e}`));
      }
    }
  });
});

const FMNIST = fashionMnistDir();
describe('Fashion-MNIST from Debian', () => {
  it('the first 100 training and test images', { skip: FMNIST ? false : 'dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)' }, async () => {
    const t0 = performance.now();
    const train = await idxDataset(FMNIST!, { limit: 100 });
    assert.ok(performance.now() - t0 < 5000, 'a limited read inflates only what it needs');
    assert.equal(train.length, 100);
    assert.deepEqual([train.gray!.height, train.gray!.width, train.gray!.count], [28, 28, 100]);
    assert.equal(train.gray!.data.length, 100 * 28 * 28);
    assert.deepEqual(train.classes, FASHION_MNIST_CLASSES);
    for (const s of train.samples) assert.ok(s.target >= 0 && s.target < 10);
    assert.equal(train.samples[0]!.target, 9, 'the first training image is an ankle boot');
    assert.ok(new Set(train.samples.map((s) => s.target)).size === 10, 'all classes among the first 100');
    const img = await decodeSample(train, 0);
    assert.deepEqual([img.width, img.height, img.data.length], [28, 28, 28 * 28 * 3]);
    const test = await openDataset(FMNIST!, { split: 'test', limit: 100 });
    assert.equal(test.length, 100);
  });
});

/** Small PNGs: class `c` images are filled with a grey value per file. */
async function png(path: string, value: number, w = 12, h = 10, channels: 1 | 3 = 3): Promise<void> {
  await sharp(Buffer.alloc(w * h * channels, value), { raw: { width: w, height: h, channels } }).png().toFile(path);
}

describe('ImageFolder and CSV datasets', () => {
  const root = join(dir, 'folder');
  before(async () => {
    for (const c of ['cat', 'Dog', 'bird']) mkdirSync(join(root, c, 'sub'), { recursive: true });
    await png(join(root, 'cat', 'b.png'), 10);
    await png(join(root, 'cat', 'a.png'), 20);
    await png(join(root, 'cat', 'sub', 'c.png'), 30);
    await png(join(root, 'Dog', 'x.PNG'), 40, 12, 10, 1);
    await png(join(root, 'bird', 'y.png'), 50);
    writeFileSync(join(root, 'bird', 'notes.txt'), 'not an image');
    writeFileSync(join(root, 'bird', 'bad.png'), 'not a png either');
  });

  it('ImageFolder follows torchvision: sorted classes, os.walk order, image extensions only', async () => {
    const ds = imageFolder(root);
    assert.deepEqual(ds.classes, ['Dog', 'bird', 'cat'], 'code point order, as Python sorts');
    const rel = ds.samples.map((s) => ('file' in s ? s.file.slice(root.length + 1) : '') + `:${s.target}`);
    assert.deepEqual(rel, ['Dog/x.PNG:0', 'bird/bad.png:1', 'bird/y.png:1', 'cat/a.png:2', 'cat/b.png:2', 'cat/sub/c.png:2']);
    assert.deepEqual(ds.classCounts(), [1, 2, 3]);
    const rgb = await decodeSample(ds, 0);
    assert.deepEqual([rgb.width, rgb.height, rgb.data[0], rgb.data[1], rgb.data[2]], [12, 10, 40, 40, 40]);
    const g = await decodeSample(ds, 3, { channels: 1 });
    assert.deepEqual([g.channels, g.data.length, g.data[0]], [1, 120, 20]);
    await assert.rejects(decodeSample(ds, 1), InputError);
    assert.equal(ds.limit(2).length, 2);
    // Empty class folders and class mismatches are one-line errors.
    mkdirSync(join(dir, 'empty', 'a'), { recursive: true });
    mkdirSync(join(dir, 'empty', 'b'), { recursive: true });
    await png(join(dir, 'empty', 'a', '1.png'), 1);
    assert.throws(() => imageFolder(join(dir, 'empty')), /class folder .*empty\/b has no images .*add images or remove the folder/);
    assert.equal(imageFolder(join(dir, 'empty'), { allowEmpty: true }).length, 1);
    assert.throws(() => checkSameClasses(ds, imageFolder(join(dir, 'empty'), { allowEmpty: true })), /differ .*only in .*"Dog"/);
    assert.throws(() => imageFolder(join(dir, 'nope')), /cannot read the dataset folder .*does not exist/);
    assert.throws(() => imageFolder(join(root, 'cat', 'sub')), /has no class folders/);
  });

  it('CSV and TSV lists: header, names or indices, relative paths, missing files skipped', async () => {
    const csv = join(root, 'list.csv');
    writeFileSync(csv, 'path,label\ncat/a.png,cat\n"cat/b.png",cat\nDog/x.PNG,Dog\nbird/y.png,bird\nbird/missing.png,bird\n');
    const a = csvList(csv);
    assert.deepEqual(a.classes, ['Dog', 'bird', 'cat']);
    assert.deepEqual(Array.from(a.targets()), [2, 2, 0, 1]);
    assert.equal(a.skipped.length, 1);
    assert.match(a.skipped[0]!.error, /list\.csv:6 but not found/);
    const tsv = join(dir, 'list.tsv');
    writeFileSync(tsv, `${join(root, 'cat', 'a.png')}\t2\n${join(root, 'bird', 'y.png')}\t0\n`);
    const b = csvList(tsv);
    assert.deepEqual(b.classes, ['0', '1', '2']);
    assert.deepEqual(Array.from(b.targets()), [2, 0]);
    const c = csvList(csv, { classes: ['cat', 'Dog', 'bird'] });
    assert.deepEqual(Array.from(c.targets()), [0, 0, 1, 2]);
    writeFileSync(join(root, 'bad.csv'), 'cat/a.png,cat\ncat/b.png\n');
    assert.throws(() => csvList(join(root, 'bad.csv')), /bad\.csv:2: expected "path,label"/);
    assert.throws(() => csvList(csv, { classes: ['x'] }), /label "cat" is not one of the 1 classes/);
    assert.equal((await openDataset(csv)).kind, 'csv');
    assert.equal((await openDataset(root)).kind, 'imagefolder');
  });

  it('gray conversions match PIL', () => {
    const rgb = { width: 2, height: 1, data: Uint8Array.from([255, 0, 0, 10, 200, 30]) };
    // PIL: Image.new('RGB', ...).convert('L'): (255,0,0) → 76, (10,200,30) → 124.
    assert.deepEqual(Array.from(rgbToGray(rgb).data), [76, 124]);
    assert.deepEqual(Array.from(grayToRgb({ width: 2, height: 1, data: Uint8Array.from([7, 9]) }).data), [7, 7, 7, 9, 9, 9]);
  });
});

/** An in-memory gray dataset whose pixel values identify the row. */
function grayDataset(n: number, classes = 3, h = 6, w = 5): TrainDataset {
  const data = new Uint8Array(n * h * w);
  for (let i = 0; i < n; i++) data.fill(i % 256, i * h * w, (i + 1) * h * w);
  const gray: GrayImages = { data, count: n, height: h, width: w };
  return new TrainDataset('idx', 'mem', Array.from({ length: classes }, (_, i) => `c${i}`), Array.from({ length: n }, (_, i) => ({ row: i, target: i % classes })), gray);
}

describe('valSplit', () => {
  it('is deterministic, stratified and disjoint', () => {
    const ds = grayDataset(100, 4);
    const a = valSplit(ds, 0.2, 7);
    const b = valSplit(ds, 0.2, 7);
    const c = valSplit(ds, 0.2, 8);
    const rows = (d: TrainDataset) => d.samples.map((s) => ('row' in s ? s.row : -1));
    assert.deepEqual(rows(a.val), rows(b.val));
    assert.notDeepEqual(rows(a.val), rows(c.val));
    assert.equal(a.val.length, 20);
    assert.deepEqual(a.val.classCounts(), [5, 5, 5, 5]);
    assert.equal(new Set([...rows(a.train), ...rows(a.val)]).size, 100);
    assert.equal(a.train.length + a.val.length, 100);
    assert.throws(() => valSplit(ds, 1.5, 0), /fraction in \(0, 1\)/);
  });
});

describe('DataLoader', () => {
  // A transform that reports what it saw: [sampleIndex, epoch, threadId, first pixel].
  const mod = join(dir, 'probe-transform.mjs');
  writeFileSync(
    mod,
    `import { threadId } from 'node:worker_threads';
export function makeTransform(config) {
  return (img, index, epoch) => {
    if (config.failOn === index) throw new Error('boom');
    return Float32Array.from([index, epoch, threadId, img.data[0] + config.add]);
  };
}
`,
  );
  const probe = (config: object = {}) => ({ module: pathToFileURL(mod).href, config: { add: 0, ...config } });
  const col = (b: Batch[], k: number) => b.flatMap((x) => Array.from({ length: x.shape[0] }, (_, i) => x.data[4 * i + k]!));
  const all = async (it: AsyncIterable<Batch>) => {
    const out: Batch[] = [];
    for await (const b of it) out.push(b);
    return out;
  };

  it('yields every sample once per epoch, in a seeded order, transformed in workers', async () => {
    const ds = grayDataset(37);
    const loader = new DataLoader(ds, { batchSize: 8, shape: [1, 1, 4], transform: probe(), seed: 5, workers: 2 });
    const again = new DataLoader(ds, { batchSize: 8, shape: [1, 1, 4], transform: probe(), seed: 5, workers: 0 });
    try {
      const e0 = await all(loader.epoch(0));
      assert.deepEqual(e0.map((b) => b.shape[0]), [8, 8, 8, 8, 5]);
      const idx0 = col(e0, 0);
      assert.deepEqual([...idx0].sort((a, b) => a - b), Array.from({ length: 37 }, (_, i) => i), 'each sample exactly once');
      assert.notDeepEqual(idx0, Array.from({ length: 37 }, (_, i) => i), 'shuffled');
      assert.deepEqual(idx0, Array.from(loader.order(0)));
      assert.deepEqual(col(e0, 3), idx0, 'the pixels are those of the sample');
      assert.deepEqual(e0.flatMap((b) => Array.from(b.targets)), idx0.map((i) => i % 3));
      assert.deepEqual(e0.flatMap((b) => Array.from(b.indices)), idx0);
      assert.ok(col(e0, 1).every((e) => e === 0));
      const threads = new Set(col(e0, 2));
      assert.ok(!threads.has(0) && threads.size >= 1, `ran in worker threads (${[...threads]})`);
      assert.equal(loader.workerCount, 2);
      const e1 = await all(loader.epoch(1));
      assert.notDeepEqual(col(e1, 0), idx0, 'another epoch, another order');
      assert.ok(col(e1, 1).every((e) => e === 1));
      // The same seed and epoch in another loader (here on the main thread): the same order.
      assert.deepEqual(col(await all(again.epoch(1)), 0), col(e1, 0));
      assert.deepEqual(col(await all(loader.epoch(0)), 0), idx0);
      // Resuming after batch 2 gives the rest of the epoch.
      const rest = await all(loader.epoch(1, { start: e1[1]!.next }));
      assert.deepEqual(col(rest, 0), col(e1.slice(2), 0));
      // drop_last, no shuffle.
      const plain = new DataLoader(ds, { batchSize: 8, shape: [1, 1, 4], transform: probe(), dropLast: true, shuffle: false, workers: 1, prefetch: 0 });
      try {
        const p = await all(plain.epoch(3));
        assert.deepEqual(p.map((b) => b.shape[0]), [8, 8, 8, 8]);
        assert.deepEqual(col(p, 0), Array.from({ length: 32 }, (_, i) => i));
        assert.equal(plain.batchesPerEpoch, 4);
      } finally {
        await plain.close();
      }
      // Breaking out of an epoch early leaves the loader usable.
      for await (const b of loader.epoch(2)) {
        assert.equal(b.batch, 0);
        break;
      }
      assert.deepEqual(col(await all(loader.epoch(0)), 0), idx0);
    } finally {
      const workers = (loader as unknown as { slots: { worker: { threadId: number } }[] }).slots.map((s) => s.worker);
      await loader.close();
      await again.close();
      assert.equal(loader.workerCount, 0);
      assert.ok(workers.length === 2 && workers.every((w) => w.threadId === -1), 'workers exited');
    }
  });

  it('skips bad images (counted, named) and fails on a broken transform', async () => {
    const root = join(dir, 'folder');
    const ds = imageFolder(root); // holds bird/bad.png
    const loader = new DataLoader(ds, { batchSize: 2, shape: [1, 1, 4], transform: probe(), seed: 1, workers: 2 });
    try {
      for (const epoch of [0, 1]) {
        const bs = await all(loader.epoch(epoch));
        assert.deepEqual(bs.map((b) => b.shape[0]), [2, 2, 1], 'batches refilled past the bad image');
        assert.equal(col(bs, 0).length, 5);
        assert.ok(!col(bs, 0).includes(1));
        const skipped = bs.flatMap((b) => b.skipped);
        assert.equal(skipped.length, 1);
        assert.match(skipped[0]!.file, /bird\/bad\.png$/);
        assert.match(skipped[0]!.error, /not an image|could not be decoded/);
      }
      assert.equal(loader.skippedFiles().length, 1);
    } finally {
      await loader.close();
    }
    const broken = new DataLoader(grayDataset(10), { batchSize: 4, shape: [1, 1, 4], transform: probe({ failOn: 3 }), workers: 1 });
    await assert.rejects(all(broken.epoch(0)), /the transform of .*probe-transform\.mjs failed on mem\[3\]: boom/);
    await broken.close();
    const wrong = new DataLoader(grayDataset(4), { batchSize: 4, shape: [1, 2, 4], transform: probe(), workers: 0 });
    await assert.rejects(all(wrong.epoch(0)), /returned 4 values, expected 8/);
    const missing = new DataLoader(grayDataset(4), { batchSize: 4, shape: [1, 1, 4], transform: { module: pathToFileURL(join(dir, 'nope.mjs')).href, config: {} }, workers: 1 });
    await assert.rejects(all(missing.epoch(0)), /cannot import the transform module/);
    assert.equal(missing.workerCount, 0, 'a failed start leaves no workers');
    assert.throws(() => new DataLoader(grayDataset(4).limit(0), { batchSize: 4, shape: [1, 1, 4], transform: probe() }), /has no samples/);
  });

  it('the default eval transform, 3 channels or 1, matches the main-thread pipeline', async () => {
    const ds = grayDataset(6, 2, 28, 28);
    // A gradient so that resizing matters.
    for (let i = 0; i < ds.gray!.data.length; i++) ds.gray!.data[i] = (i * 13) % 256;
    const p: PreprocessConfig = { size: [32, 32], cropPct: 0.875, cropMode: 'center', interpolation: 'bicubic', backend: 'pil', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], exifRotate: false, maxPixels: 1e8 };
    const rgb = new DataLoader(ds, { batchSize: 3, shape: [3, 32, 32], transform: evalTransform(p), shuffle: false, workers: 1 });
    const one = new DataLoader(ds, { batchSize: 3, shape: [1, 32, 32], transform: evalTransform(p, { channels: 1, grayMean: 0.5, grayStd: 0.5 }), shuffle: false, workers: 0 });
    try {
      const b = (await all(rgb.epoch(0)))[1]!;
      const img = await decodeSample(ds, 4);
      const want = normalize(transformImage(img, p), p);
      assert.deepEqual(b.data.subarray(3 * 32 * 32, 6 * 32 * 32), want);
      const g = (await all(one.epoch(0)))[1]!;
      const t = transformImage(img, p);
      const want1 = Float32Array.from({ length: 32 * 32 }, (_, i) => Math.fround(Math.fround(Math.fround(t.data[3 * i]! / 255) - 0.5) / 0.5));
      assert.deepEqual(g.data.subarray(32 * 32, 2 * 32 * 32), want1);
    } finally {
      await rgb.close();
      await one.close();
    }
  });
});

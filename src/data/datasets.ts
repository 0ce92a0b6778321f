/**
 * Training datasets: a list of samples (an image file, or a row of an in-memory uint8 grayscale array) with a
 * class index each, and the class names. Three sources: an ImageFolder tree (torchvision's rules), a CSV/TSV
 * list (`path,label`), and IDX pairs (MNIST / Fashion-MNIST, torchvision's raw folder or Debian's package).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { Rng } from '../util/rng.js';
import { InputError } from '../weights/tensor.js';
import { FASHION_MNIST_CLASSES, MNIST_CLASSES, findIdxFiles, readIdxPair, type IdxReadOptions, type IdxSplit } from './idx.js';
import { decodeImage, DEFAULT_MAX_PIXELS } from './preprocess.js';
import type { RgbImage } from './resize.js';
import { decodeSimplePng } from '../node/png.js';

/** The extensions `tsimm eval` lists (src/tasks/eval.ts). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.bmp']);

/** A sample: an image file, or row `row` of the dataset's in-memory gray images. */
export type TrainSample = { file: string; target: number } | { row: number; target: number };

/** N grayscale images of H × W, uint8, row-major (N·H·W bytes); shared with loader workers without copying. */
export interface GrayImages {
  data: Uint8Array;
  count: number;
  height: number;
  width: number;
}

/** A 1-channel uint8 image (HW). `channels` tells it apart from an RgbImage. */
export interface GrayImage {
  width: number;
  height: number;
  channels: 1;
  data: Uint8Array;
}

export type DatasetKind = 'imagefolder' | 'csv' | 'idx';

export interface Skipped {
  file: string;
  error: string;
}

export class TrainDataset {
  constructor(
    readonly kind: DatasetKind,
    /** The folder, list file or IDX images file it came from. */
    readonly source: string,
    readonly classes: readonly string[],
    readonly samples: readonly TrainSample[],
    /** In-memory images that `{ row }` samples index (IDX). */
    readonly gray?: GrayImages,
    /** Entries listed but unusable (missing files, unknown labels): counted, not fatal. */
    readonly skipped: readonly Skipped[] = [],
  ) {}

  get length(): number {
    return this.samples.length;
  }

  get numClasses(): number {
    return this.classes.length;
  }

  /** Whether the images are all 1-channel (IDX). Files are only known once decoded. */
  get isGray(): boolean {
    return this.gray !== undefined;
  }

  /** The samples at `indices` (in that order), sharing the images. */
  subset(indices: ArrayLike<number>): TrainDataset {
    const s = Array.from(indices, (i) => {
      const x = this.samples[i];
      if (!x) throw new RangeError(`sample index ${i} out of range [0, ${this.length})`);
      return x;
    });
    return new TrainDataset(this.kind, this.source, this.classes, s, this.gray, this.skipped);
  }

  /** The first `n` samples (all when n is undefined or ≥ length): `--limit` for tests and quick runs. */
  limit(n?: number): TrainDataset {
    if (n === undefined || n >= this.length) return this;
    return new TrainDataset(this.kind, this.source, this.classes, this.samples.slice(0, Math.max(0, n)), this.gray, this.skipped);
  }

  targets(): Int32Array {
    return Int32Array.from(this.samples, (s) => s.target);
  }

  /** Samples per class. */
  classCounts(): number[] {
    const c = new Array<number>(this.classes.length).fill(0);
    for (const s of this.samples) c[s.target]!++;
    return c;
  }

  /** A name for sample i in messages: its file, or `source[row]`. */
  sampleName(i: number): string {
    return sampleName(this.source, this.samples[i]!);
  }
}

export function sampleName(source: string, s: TrainSample): string {
  return 'file' in s ? s.file : `${source}[${s.row}]`;
}

/** Throws a one-line error unless `b` (a validation set) has exactly `a`'s classes, in the same order. */
export function checkSameClasses(a: TrainDataset, b: TrainDataset): void {
  const same = a.classes.length === b.classes.length && a.classes.every((c, i) => b.classes[i] === c);
  if (same) return;
  const onlyA = a.classes.filter((c) => !b.classes.includes(c));
  const onlyB = b.classes.filter((c) => !a.classes.includes(c));
  const diff = [onlyA.length && `only in ${a.source}: ${list(onlyA)}`, onlyB.length && `only in ${b.source}: ${list(onlyB)}`].filter(Boolean).join('; ');
  throw new InputError(`the classes of ${b.source} differ from those of ${a.source} (${diff || 'same names, different order'}); give both the same class folders or labels`);
}

function list(xs: string[]): string {
  return xs.slice(0, 5).map((x) => JSON.stringify(x)).join(', ') + (xs.length > 5 ? ` and ${xs.length - 5} more` : '');
}

function readDir(dir: string, what: string) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read the ${what} ${dir}: ${code === 'ENOENT' ? 'it does not exist' : code === 'ENOTDIR' ? 'it is a file, not a folder' : (e as Error).message}`);
  }
}

export interface ImageFolderOptions {
  /** Use these classes (in this order) instead of the sorted folder names: a validation set takes its training set's. */
  classes?: readonly string[];
  /** Allow class folders without images (default: an error, as torchvision raises). */
  allowEmpty?: boolean;
}

/**
 * An ImageFolder tree, as torchvision's: classes are the sorted sub-folder names (index = position); each class
 * holds the images anywhere below its folder (os.walk order: folders sorted by path, files sorted within).
 */
export function imageFolder(root: string, o: ImageFolderOptions = {}): TrainDataset {
  const entries = readDir(root, 'dataset folder');
  const found = entries.filter((e) => e.isDirectory() || (e.isSymbolicLink() && isDir(join(root, e.name)))).map((e) => e.name).sort();
  if (!found.length) throw new InputError(`${root} has no class folders: put each class's images in a sub-folder named after it (or give a CSV list)`);
  const classes = o.classes ?? found;
  if (o.classes) {
    const extra = found.filter((c) => !o.classes!.includes(c));
    if (extra.length) throw new InputError(`${root} has class folders the training set lacks: ${list(extra)}; the validation set must use the training set's classes`);
  }
  const samples: TrainSample[] = [];
  const skipped: Skipped[] = [];
  classes.forEach((cls, target) => {
    const dir = join(root, cls);
    if (!found.includes(cls)) {
      if (!o.allowEmpty) throw new InputError(`${root} has no folder "${cls}" for the class of that name; add it (with images) or give the same classes as the training set`);
      return;
    }
    const files = walk(dir, skipped);
    if (!files.length && !o.allowEmpty) {
      throw new InputError(`the class folder ${dir} has no images (${[...IMAGE_EXTENSIONS].join(' ')}); add images or remove the folder`);
    }
    for (const f of files) samples.push({ file: f, target });
  });
  return new TrainDataset('imagefolder', root, classes, samples, undefined, skipped);
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Image files below `dir` in torchvision's order: sorted(os.walk(dir)), sorted files per folder. */
function walk(dir: string, skipped: Skipped[]): string[] {
  const folders: string[] = [];
  const visit = (d: string, depth: number) => {
    folders.push(d);
    if (depth > 32) return;
    let es;
    try {
      es = readdirSync(d, { withFileTypes: true });
    } catch (e) {
      skipped.push({ file: d, error: (e as Error).message });
      return;
    }
    for (const e of es) if (e.isDirectory() || (e.isSymbolicLink() && isDir(join(d, e.name)))) visit(join(d, e.name), depth + 1);
  };
  visit(dir, 0);
  folders.sort(pyCompare);
  const out: string[] = [];
  for (const d of folders) {
    let es;
    try {
      es = readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    const names = es.filter((e) => !e.isDirectory() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())).map((e) => e.name).sort(pyCompare);
    for (const n of names) out.push(join(d, n));
  }
  return out;
}

/** Python's str ordering (code points), which JavaScript's default sort matches outside astral characters. */
function pyCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface CsvOptions {
  /** Class names (label = a name from it, or an index into it); default: from the labels (see csvList). */
  classes?: readonly string[];
  /** Whether the first line is a header; default: detected (a first line whose label is `label`, `class`, …). */
  header?: boolean;
  /** Field separator; default: tab for .tsv or a first line with a tab, else comma. */
  delimiter?: string;
}

const HEADER_LABELS = /^(label|labels|class|class_?name|category|target|y)$/i;

/** Split one CSV/TSV line; double-quoted fields may hold the delimiter and `""`. */
function splitLine(line: string, delim: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (q) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') q = false;
      else cur += ch;
    } else if (ch === '"' && cur.trim() === '') {
      q = true;
      cur = '';
    } else if (ch === delim) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(q ? cur : cur.trim());
  return out;
}

/**
 * A CSV or TSV list of `path,label` lines (an optional header line; `#` comments and blank lines ignored).
 * Paths are relative to the list file's folder. Labels are class names or class indices: when every label is a
 * non-negative integer (and no `classes` are given) they are indices and the classes are "0" … max; otherwise
 * they are names and the classes are the sorted distinct names (as ImageFolder sorts folders). Listed files that
 * do not exist are skipped and counted.
 */
export function csvList(file: string, o: CsvOptions = {}): TrainDataset {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read the list file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder (give ImageFolder trees as --data DIR)' : (e as Error).message}`);
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const first = lines.find((l) => l.trim() && !l.trimStart().startsWith('#')) ?? '';
  const delim = o.delimiter ?? (extname(file).toLowerCase() === '.tsv' || first.includes('\t') ? '\t' : ',');
  const rows: { n: number; path: string; label: string }[] = [];
  let headerSeen = false;
  for (const [i, raw] of lines.entries()) {
    if (!raw.trim() || raw.trimStart().startsWith('#')) continue;
    const f = splitLine(raw, delim);
    if (!headerSeen) {
      headerSeen = true;
      if (o.header ?? (f.length >= 2 && HEADER_LABELS.test(f[1]!))) continue;
    }
    if (f.length < 2 || !f[0] || !f[1]) {
      throw new InputError(`${file}:${i + 1}: expected "path${delim === '\t' ? '<TAB>' : delim}label", got "${raw.slice(0, 80)}"`);
    }
    rows.push({ n: i + 1, path: f[0], label: f[1] });
  }
  if (!rows.length) throw new InputError(`${file} lists no images: expected "path,label" lines`);
  const isIndex = (s: string) => /^\d+$/.test(s);
  let classes: readonly string[];
  let targetOf: (label: string) => number | undefined;
  if (o.classes) {
    classes = o.classes;
    const byName = new Map(classes.map((c, i) => [c, i]));
    targetOf = (l) => byName.get(l) ?? (isIndex(l) && Number(l) < classes.length ? Number(l) : undefined);
  } else if (rows.every((r) => isIndex(r.label))) {
    const max = Math.max(...rows.map((r) => Number(r.label)));
    if (max >= 100_000) throw new InputError(`${file}: label ${max} is too large for a class index; give class names or a class list`);
    classes = Array.from({ length: max + 1 }, (_, i) => String(i));
    targetOf = (l) => Number(l);
  } else {
    classes = [...new Set(rows.map((r) => r.label))].sort(pyCompare);
    const byName = new Map(classes.map((c, i) => [c, i]));
    targetOf = (l) => byName.get(l);
  }
  const base = dirname(resolve(file));
  const samples: TrainSample[] = [];
  const skipped: Skipped[] = [];
  for (const r of rows) {
    const path = isAbsolute(r.path) ? r.path : join(base, r.path);
    const target = targetOf(r.label);
    if (target === undefined) {
      if (o.classes) throw new InputError(`${file}:${r.n}: label "${r.label}" is not one of the ${classes.length} classes (${list([...classes])}); fix the line or the class list`);
      continue;
    }
    let ok = false;
    try {
      ok = statSync(path).isFile();
    } catch {
      ok = false;
    }
    if (ok) samples.push({ file: path, target });
    else skipped.push({ file: path, error: `listed in ${file}:${r.n} but not found` });
  }
  return new TrainDataset('csv', file, classes, samples, undefined, skipped);
}

export interface IdxDatasetOptions extends IdxReadOptions {
  split?: IdxSplit;
  /** Class names; default Fashion-MNIST's when the images file's path says "fashion" (Debian's folder, torchvision's FashionMNIST/raw), else MNIST's digits. */
  classes?: readonly string[] | 'fashion-mnist' | 'mnist';
}

/**
 * An IDX pair (images + labels) from a folder laid out as torchvision's raw folder or Debian's
 * dataset-fashion-mnist (/usr/share/datasets/fashion-mnist). Images are held in memory as uint8 gray
 * (in a SharedArrayBuffer, so loader workers read them without copies); `limit` reads only the first images.
 */
export async function idxDataset(dir: string, o: IdxDatasetOptions = {}): Promise<TrainDataset> {
  const { images, labels } = findIdxFiles(dir, o.split ?? 'train');
  const pair = await readIdxPair(images, labels, o);
  const named = o.classes ?? (/fashion/i.test(images) ? 'fashion-mnist' : 'mnist');
  const classes = named === 'fashion-mnist' ? FASHION_MNIST_CLASSES : named === 'mnist' ? MNIST_CLASSES : named;
  const lab = pair.labels.data;
  const samples: TrainSample[] = new Array(pair.count);
  for (let i = 0; i < pair.count; i++) {
    const t = lab[i]!;
    if (!(t >= 0 && t < classes.length)) {
      throw new InputError(`${labels}: label ${t} of image ${i} is outside the ${classes.length} classes [0, ${classes.length}); give the class names (classes option) or check the file`);
    }
    samples[i] = { row: i, target: t };
  }
  const shared = new Uint8Array(new SharedArrayBuffer(pair.images.data.byteLength));
  shared.set(pair.images.data as Uint8Array);
  const gray: GrayImages = { data: shared, count: pair.count, height: pair.height, width: pair.width };
  return new TrainDataset('idx', images, classes, samples, gray);
}

export interface OpenDatasetOptions extends ImageFolderOptions, CsvOptions, IdxDatasetOptions {
  classes?: readonly string[];
  limit?: number;
}

/**
 * `--data PATH`: a CSV/TSV list file, a folder of IDX files, or an ImageFolder tree (in that order of detection).
 * `limit` keeps the first samples.
 */
export async function openDataset(path: string, o: OpenDatasetOptions = {}): Promise<TrainDataset> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new InputError(`${path}: no such file or folder; give an ImageFolder tree, a CSV/TSV list or a folder of IDX files`);
  }
  if (st.isFile()) return csvList(path, o).limit(o.limit);
  let idx = false;
  try {
    findIdxFiles(path, o.split ?? 'train');
    idx = true;
  } catch {
    idx = false;
  }
  if (idx) return idxDataset(path, o);
  return imageFolder(path, o).limit(o.limit);
}

/**
 * A deterministic validation split, stratified: each class's samples are shuffled with Rng(seed) (one stream,
 * classes in index order) and round(fraction · count) of them go to validation (at least one when the class has
 * two or more samples and fraction > 0). Both parts keep the dataset's order.
 */
export function valSplit(ds: TrainDataset, fraction: number, seed = 0): { train: TrainDataset; val: TrainDataset } {
  if (!(fraction > 0 && fraction < 1)) throw new InputError(`--val-split must be a fraction in (0, 1), got ${fraction}`);
  const byClass: number[][] = ds.classes.map(() => []);
  ds.samples.forEach((s, i) => byClass[s.target]!.push(i));
  const rng = new Rng(mixSeed(seed, 0x7a1));
  const isVal = new Uint8Array(ds.length);
  for (const idx of byClass) {
    if (!idx.length) continue;
    let k = Math.round(fraction * idx.length);
    if (k === 0 && idx.length >= 2) k = 1;
    if (k >= idx.length) k = idx.length - 1;
    const p = rng.permutation(idx.length);
    for (let j = 0; j < k; j++) isVal[idx[p[j]!]!] = 1;
  }
  const train: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < ds.length; i++) (isVal[i] ? val : train).push(i);
  if (!val.length) throw new InputError(`--val-split ${fraction} of ${ds.length} samples leaves no validation samples; use a larger fraction or more data`);
  return { train: ds.subset(train), val: ds.subset(val) };
}

/** A 32-bit seed from (seed, salt): murmur3's finaliser, so nearby seeds give unrelated streams. */
export function mixSeed(seed: number, salt: number): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(salt >>> 0, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export interface DecodeOptions {
  backend?: 'pil' | 'cv2';
  exifRotate?: boolean;
  maxPixels?: number;
}

/** Gray → RGB by replicating the value into 3 channels (PIL's convert('RGB') of an L image). */
export function grayToRgb(g: { width: number; height: number; data: Uint8Array }): RgbImage {
  const n = g.width * g.height;
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = g.data[i]!;
  return { width: g.width, height: g.height, data };
}

/** RGB → gray as PIL's convert('L') (ITU-R 601-2 luma, L = R·299/1000 + G·587/1000 + B·114/1000, fixed point). */
export function rgbToGray(img: RgbImage): GrayImage {
  const n = img.width * img.height;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (img.data[3 * i]! * 19595 + img.data[3 * i + 1]! * 38470 + img.data[3 * i + 2]! * 7471 + 0x8000) >>> 16;
  return { width: img.width, height: img.height, channels: 1, data };
}

/** Row `row` of in-memory gray images (a view, not a copy). */
export function grayRow(g: GrayImages, row: number): GrayImage {
  const n = g.height * g.width;
  return { width: g.width, height: g.height, channels: 1, data: g.data.subarray(row * n, (row + 1) * n) };
}

/**
 * Decode sample i: to RGB (gray replicated to 3 channels) or, with `channels: 1` (a model built with inChans 1),
 * to one channel (IDX rows as stored; colour files by PIL's convert('L')). Throws InputError for a bad file.
 */
export async function decodeSample(ds: TrainDataset, i: number, o?: DecodeOptions & { channels?: 3 }): Promise<RgbImage>;
export async function decodeSample(ds: TrainDataset, i: number, o: DecodeOptions & { channels: 1 }): Promise<GrayImage>;
export async function decodeSample(ds: TrainDataset, i: number, o: DecodeOptions & { channels?: 1 | 3 } = {}): Promise<RgbImage | GrayImage> {
  const s = ds.samples[i];
  if (!s) throw new RangeError(`sample index ${i} out of range [0, ${ds.length})`);
  return decodeSampleOf(s, ds.gray, o);
}

/** decodeSample on a bare sample (what loader workers call). */
export async function decodeSampleOf(s: TrainSample, gray: GrayImages | undefined, o: DecodeOptions & { channels?: 1 | 3 } = {}): Promise<RgbImage | GrayImage> {
  if ('row' in s) {
    if (!gray) throw new InputError(`sample row ${s.row} has no in-memory images to read`);
    const g = grayRow(gray, s.row);
    return o.channels === 1 ? g : grayToRgb(g);
  }
  const exifRotate = o.exifRotate ?? o.backend === 'cv2';
  const maxPixels = o.maxPixels ?? DEFAULT_MAX_PIXELS;
  // Plain 8-bit PNGs (small-image datasets) without sharp's per-call cost; anything else goes to sharp.
  let fast: RgbImage | undefined;
  if (!exifRotate && /\.png$/i.test(s.file)) {
    try {
      fast = decodeSimplePng(readFileSync(s.file), maxPixels);
    } catch {
      fast = undefined;
    }
  }
  const rgb = fast ?? (await decodeImage(s.file, { exifRotate, maxPixels, backend: o.backend ?? 'pil' }));
  return o.channels === 1 ? rgbToGray(rgb) : rgb;
}

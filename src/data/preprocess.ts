/**
 * Images in, in Node: decode with sharp (as PIL and OpenCV decode: embedded ICC profiles ignored, EXIF
 * orientation applied only for the OpenCV pipeline), then the reference pipelines of ./transforms.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { InputError } from '../weights/tensor.js';
import type { RgbImage } from './resize.js';
import { normalize, transformImage, type PreprocessConfig } from './transforms.js';

export * from './transforms.js';

/**
 * Decode to 8-bit RGB as the reference of `backend` does: PIL's Image.open(f).convert('RGB') (timm) or
 * cv2.imread(f, IMREAD_COLOR) (PaddleClas). Gray is replicated, alpha dropped (never composited), CMYK converted
 * by the reference's own formula, 16-bit gray clipped (PIL) or shifted (OpenCV), first frame of animations.
 */
export async function decodeImage(input: string | Uint8Array, o: { exifRotate: boolean; maxPixels: number; backend?: 'pil' | 'cv2' }): Promise<RgbImage> {
  const name = typeof input === 'string' ? input : 'image';
  if (typeof input === 'string') {
    let st;
    try {
      st = statSync(input);
    } catch {
      throw new InputError(`${name}: no such file`);
    }
    if (st.isDirectory()) throw new InputError(`${name} is a directory, not an image`);
    if (st.size === 0) throw new InputError(`${name} is empty (0 bytes): not an image`);
  } else if (input.byteLength === 0) throw new InputError('the image is empty (0 bytes): not an image');
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false, pages: 1 }).metadata();
  } catch (e) {
    const msg = (e as Error).message;
    if (/Input file is missing|ENOENT/.test(msg)) throw new InputError(`${name}: no such file`);
    if (/premature|truncat|corrupt/i.test(msg)) throw new InputError(`${name} could not be decoded (${msg.split('\n')[0]}); the file may be truncated or corrupt`);
    throw new InputError(`${name} is not an image tsimm can decode (${msg.split('\n')[0]}); JPEG, PNG, WebP, GIF and TIFF are supported`);
  }
  const px = (meta.width ?? 0) * (meta.pageHeight ?? meta.height ?? 0);
  if (px > o.maxPixels) {
    throw new InputError(`${name} is ${meta.width}x${meta.height} (${(px / 1e6).toFixed(0)} MP), over the ${(o.maxPixels / 1e6).toFixed(0)} MP limit; raise it with --max-pixels if you trust the file`);
  }
  // PIL and OpenCV ignore embedded ICC profiles: so must we (sharp would convert to sRGB through them).
  let s = sharp(input, { limitInputPixels: false, pages: 1, failOn: 'truncated', ignoreIcc: true });
  if (o.exifRotate) s = s.rotate();
  const backend = o.backend ?? 'pil';
  const cmyk = meta.space === 'cmyk' && meta.channels === 4;
  // A 16-bit single-channel image is PIL mode I;16, whose convert('RGB') clips at 255 (OpenCV takes the high byte).
  const gray16 = !cmyk && backend === 'pil' && meta.channels === 1 && meta.depth === 'ushort';
  // Keep CMYK as CMYK (as stored, Adobe inversion undone like PIL's CMYK;I): converted below by the reference's formula.
  if (cmyk) s = s.pipelineColourspace('cmyk').toColourspace('cmyk');
  if (gray16) s = s.pipelineColourspace('grey16').toColourspace('grey16');
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await s.raw({ depth: gray16 ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new InputError(`${name} could not be decoded (${(e as Error).message.split('\n')[0]}); the file may be truncated or corrupt`);
  }
  const { width, height, channels } = raw.info;
  const src = raw.data;
  const n = width * height;
  if (cmyk) return { width, height, data: cmykToRgb(src, n, backend === 'cv2' && meta.format === 'jpeg' ? { adobe: hasAdobeMarker(input) } : undefined) };
  if (gray16) {
    const v16 = new Uint16Array(src.buffer, src.byteOffset, n);
    const data = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = Math.min(v16[i]!, 255);
    return { width, height, data };
  }
  if (channels === 3) return { width, height, data: new Uint8Array(src.buffer, src.byteOffset, src.byteLength) };
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (channels <= 2) {
      const v = src[i * channels]!;
      data[3 * i] = v;
      data[3 * i + 1] = v;
      data[3 * i + 2] = v;
    } else {
      data[3 * i] = src[i * channels]!;
      data[3 * i + 1] = src[i * channels + 1]!;
      data[3 * i + 2] = src[i * channels + 2]!;
    }
  }
  // A GIF's transparent pixels come out of libvips as black; PIL keeps the palette colour of the transparent index.
  if (meta.format === 'gif' && channels === 4 && backend === 'pil') {
    const colour = gifTransparentColour(input);
    if (colour) for (let i = 0; i < n; i++) if (src[i * 4 + 3] === 0) data.set(colour, 3 * i);
  }
  return { width, height, data };
}

/**
 * CMYK → RGB as the references convert it. PIL (cmyk2rgb, Pillow 9.4): nk = 255 − K, R = nk − round(C·nk / 255),
 * with its MULDIV255 rounding. OpenCV (icvCvt_CMYK2BGR): on libjpeg's raw values, which are inverted for Adobe
 * files, R = k − ((255 − c)·k >> 8).
 */
export function cmykToRgb(src: Uint8Array, n: number, cv2?: { adobe: boolean }): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const k = src[4 * i + 3]!;
    for (let c = 0; c < 3; c++) {
      const v = src[4 * i + c]!;
      if (cv2) {
        // Back to what libjpeg handed OpenCV: sharp (like PIL) has undone the Adobe inversion.
        const rc = cv2.adobe ? 255 - v : v;
        const rk = cv2.adobe ? 255 - k : k;
        out[3 * i + c] = rk - (((255 - rc) * rk) >> 8);
      } else {
        const nk = 255 - k;
        const t = v * nk + 128;
        out[3 * i + c] = Math.max(0, nk - (((t >> 8) + t) >> 8));
      }
    }
  }
  return out;
}

function bytesOf(input: string | Uint8Array): Uint8Array {
  return typeof input === 'string' ? new Uint8Array(readFileSync(input)) : input;
}

/** Whether a JPEG carries an Adobe APP14 segment (its CMYK is stored inverted). */
export function hasAdobeMarker(input: string | Uint8Array): boolean {
  const b = bytesOf(input);
  let p = 2;
  while (p + 4 <= b.length && b[p] === 0xff) {
    const marker = b[p + 1]!;
    if (marker === 0xda || marker === 0xd9) break; // start of scan / end of image
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    if (marker === 0xee && len >= 7 && String.fromCharCode(...b.subarray(p + 4, p + 9)) === 'Adobe') return true;
    p += 2 + len;
  }
  return false;
}

/** The palette colour of the first frame's transparent index in a GIF, or undefined. */
export function gifTransparentColour(input: string | Uint8Array): Uint8Array | undefined {
  const b = bytesOf(input);
  if (b.length < 13) return undefined;
  let p = 13;
  let palette: Uint8Array | undefined;
  if (b[10]! & 0x80) {
    const size = 3 * (1 << ((b[10]! & 7) + 1));
    palette = b.subarray(p, p + size);
    p += size;
  }
  let transparent: number | undefined;
  while (p < b.length) {
    if (b[p] === 0x21) {
      // Extension: a graphic control extension holds the transparent index.
      if (b[p + 1] === 0xf9 && b[p + 2] === 4 && b[p + 3]! & 1) transparent = b[p + 6];
      p += 2;
      while (p < b.length && b[p] !== 0) p += b[p]! + 1;
      p++;
    } else if (b[p] === 0x2c) {
      const packed = b[p + 9] ?? 0;
      if (packed & 0x80) palette = b.subarray(p + 10, p + 10 + 3 * (1 << ((packed & 7) + 1)));
      break;
    } else break;
  }
  if (transparent === undefined || !palette || 3 * transparent + 3 > palette.length) return undefined;
  return palette.slice(3 * transparent, 3 * transparent + 3);
}

/** Decode, resize, crop and normalize one image file to a [3, H, W] float32 tensor (written at `offset`). */
export async function preprocessImage(input: string | Uint8Array, p: PreprocessConfig, out?: Float32Array, offset = 0): Promise<Float32Array> {
  return normalize(transformImage(await decodeImage(input, p), p), p, out, offset);
}

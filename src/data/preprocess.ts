/**
 * Images in, in Node: decode with sharp (as PIL and OpenCV decode: embedded ICC profiles ignored, EXIF
 * orientation applied only for the OpenCV pipeline), then the reference pipelines of ./transforms.ts.
 */
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { InputError } from '../weights/tensor.js';
import type { RgbImage } from './resize.js';
import { normalize, transformImage, type PreprocessConfig } from './transforms.js';

export * from './transforms.js';

/** Decode to 8-bit RGB (gray replicated, alpha dropped, CMYK to sRGB), first frame of animations. */
export async function decodeImage(input: string | Uint8Array, o: { exifRotate: boolean; maxPixels: number }): Promise<RgbImage> {
  const name = typeof input === 'string' ? input : 'image';
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
  if (meta.space === 'cmyk') s = s.toColourspace('srgb');
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await s.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new InputError(`${name} could not be decoded (${(e as Error).message.split('\n')[0]}); the file may be truncated or corrupt`);
  }
  const { width, height, channels } = raw.info;
  const src = raw.data;
  if (channels === 3) return { width, height, data: new Uint8Array(src.buffer, src.byteOffset, src.byteLength) };
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, n = width * height; i < n; i++) {
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
  return { width, height, data };
}

/** Decode, resize, crop and normalize one image file to a [3, H, W] float32 tensor (written at `offset`). */
export async function preprocessImage(input: string | Uint8Array, p: PreprocessConfig, out?: Float32Array, offset = 0): Promise<Float32Array> {
  return normalize(transformImage(await decodeImage(input, p), p), p, out, offset);
}

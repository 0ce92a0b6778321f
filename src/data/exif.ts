/**
 * EXIF orientation in JPEG bytes, without a decoder. The page decodes with the browser, which rotates by the
 * EXIF tag whatever `imageOrientation` says; timm's pipeline (PIL) ignores the tag and PaddleClas' (OpenCV)
 * applies it. So the page rewrites the tag to 1 before decoding (the browser then cannot rotate) and applies the
 * orientation itself where the reference does, as Node does with sharp.
 */
import type { RgbImage } from './resize.js';

/** Where the Orientation tag's value is in a JPEG's Exif IFD0 (byte offset, byte order), if anywhere. */
function orientationField(b: Uint8Array): { at: number; little: boolean } | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return undefined;
    const marker = b[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      p += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // image data: no Exif before it
    const len = v.getUint16(p + 2);
    const seg = p + 4;
    if (marker === 0xe1 && len >= 16 && seg + 6 <= b.length && v.getUint32(seg) === 0x45786966 && v.getUint16(seg + 4) === 0) {
      const tiff = seg + 6;
      const end = Math.min(b.length, p + 2 + len);
      if (tiff + 8 > end) return undefined;
      const little = v.getUint16(tiff) === 0x4949;
      const ifd = tiff + v.getUint32(tiff + 4, little);
      if (ifd + 2 > end) return undefined;
      const n = v.getUint16(ifd, little);
      for (let i = 0; i < n; i++) {
        const e = ifd + 2 + 12 * i;
        if (e + 12 > end) return undefined;
        if (v.getUint16(e, little) === 0x0112 && v.getUint16(e + 2, little) === 3) return { at: e + 8, little };
      }
      return undefined;
    }
    p += 2 + len;
  }
  return undefined;
}

/** The EXIF orientation (1..8) of JPEG bytes; 1 when there is none (or not a JPEG). */
export function exifOrientation(bytes: Uint8Array): number {
  const f = orientationField(bytes);
  if (!f) return 1;
  const o = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(f.at, f.little);
  return o >= 1 && o <= 8 ? o : 1;
}

/** The same bytes with the orientation tag set to 1 (a copy; the input is returned when there is nothing to change). */
export function withoutOrientation(bytes: Uint8Array): Uint8Array {
  const f = orientationField(bytes);
  if (!f || exifOrientation(bytes) === 1) return bytes;
  const out = bytes.slice();
  new DataView(out.buffer).setUint16(f.at, 1, f.little);
  return out;
}

/** Apply EXIF orientation `o` (as PIL's ImageOps.exif_transpose and OpenCV's imread do). */
export function applyOrientation(img: RgbImage, o: number): RgbImage {
  if (o <= 1 || o > 8) return img;
  const { width: w, height: h, data } = img;
  const swap = o >= 5;
  const ow = swap ? h : w;
  const oh = swap ? w : h;
  const out = new Uint8Array(ow * oh * 3);
  for (let dy = 0; dy < oh; dy++) {
    for (let dx = 0; dx < ow; dx++) {
      // Source pixel of output (dx, dy) for each orientation (2: mirror, 3: 180°, 4: flip, 5: transpose,
      // 6: 90° clockwise, 7: transverse, 8: 90° counter-clockwise).
      let sx: number;
      let sy: number;
      switch (o) {
        case 2: sx = w - 1 - dx; sy = dy; break;
        case 3: sx = w - 1 - dx; sy = h - 1 - dy; break;
        case 4: sx = dx; sy = h - 1 - dy; break;
        case 5: sx = dy; sy = dx; break;
        case 6: sx = dy; sy = h - 1 - dx; break;
        case 7: sx = w - 1 - dy; sy = h - 1 - dx; break;
        default: sx = w - 1 - dy; sy = dx; break;
      }
      const s = 3 * (sy * w + sx);
      const d = 3 * (dy * ow + dx);
      out[d] = data[s]!;
      out[d + 1] = data[s + 1]!;
      out[d + 2] = data[s + 2]!;
    }
  }
  return { width: ow, height: oh, data: out };
}

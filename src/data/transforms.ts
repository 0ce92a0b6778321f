/**
 * The eval pipelines of the two references, on decoded pixels (no Node APIs: the browser build uses them too).
 *
 * timm (PIL): resize the short side to floor(size / crop_pct) with PIL's antialiased filter (torchvision
 * geometry: long side trunc(S·long/short)), centre crop with round-half-even offsets, ToTensor (/255) and
 * Normalize in float32.
 * PaddleClas (OpenCV): resize the short side to resize_short with INTER_LINEAR (each side round(side·s/short)),
 * crop at floor offsets, x·float32(1/255) − mean, / std.
 */
import type { CropMode, Interpolation, PretrainedCfg, ResizeBackend } from '../models/types.js';
import { roundHalfEven } from '../math.js';
import { InputError } from '../weights/tensor.js';
import { crop, resizeCv2Linear, resizePil, type RgbImage } from './resize.js';

/** PIL's decompression-bomb limit (2 × MAX_IMAGE_PIXELS). */
export const DEFAULT_MAX_PIXELS = 178_956_970;

export interface PreprocessConfig {
  size: [number, number];
  cropPct: number;
  cropMode: CropMode;
  interpolation: Interpolation;
  backend: ResizeBackend;
  /** PaddleClas resize_short (cv2 backend); default round(size / crop_pct). */
  resizeShort?: number;
  mean: [number, number, number];
  std: [number, number, number];
  exifRotate: boolean;
  maxPixels: number;
}

export type PreprocessOverrides = Partial<Omit<PreprocessConfig, 'size'>> & { size?: number | [number, number] };

/** The pipeline a config's weights were evaluated with, with any overrides applied (CLI flags). */
export function resolvePreprocess(cfg: PretrainedCfg, o: PreprocessOverrides = {}): PreprocessConfig {
  const size = o.size === undefined ? ([cfg.inputSize[1], cfg.inputSize[2]] as [number, number]) : typeof o.size === 'number' ? ([o.size, o.size] as [number, number]) : o.size;
  const backend = o.backend ?? cfg.resizeBackend;
  const cropPct = o.cropPct ?? cfg.cropPct;
  if (!(cropPct > 0 && cropPct <= 1.5)) throw new InputError(`crop pct must be in (0, 1.5], got ${cropPct}`);
  return {
    size,
    cropPct,
    cropMode: o.cropMode ?? cfg.cropMode,
    interpolation: o.interpolation ?? cfg.interpolation,
    backend,
    // The config's resize_short holds for its own size and crop; other sizes derive it from crop_pct.
    resizeShort: o.resizeShort ?? (o.cropPct === undefined && size[0] === cfg.inputSize[1] && size[1] === cfg.inputSize[2] ? cfg.resizeShort : undefined),
    mean: o.mean ?? cfg.mean,
    std: o.std ?? cfg.std,
    // Each reference's own decode: PIL ignores EXIF orientation, OpenCV applies it.
    exifRotate: o.exifRotate ?? backend === 'cv2',
    maxPixels: o.maxPixels ?? DEFAULT_MAX_PIXELS,
  };
}

/** Resize and crop as the pipeline does, to a uint8 HWC image of `size`. */
export function transformImage(img: RgbImage, p: PreprocessConfig): RgbImage {
  const [h, w] = p.size;
  if (p.backend === 'cv2') {
    if (p.interpolation !== 'bilinear') throw new InputError('the cv2 backend implements bilinear only (what PaddleClas evaluates with)');
    const short = p.resizeShort ?? Math.round(Math.max(h, w) / p.cropPct);
    const percent = short / Math.min(img.width, img.height);
    const rw = roundHalfEven(img.width * percent);
    const rh = roundHalfEven(img.height * percent);
    const resized = resizeCv2Linear(img, rw, rh);
    return crop(resized, Math.floor((rw - w) / 2), Math.floor((rh - h) / 2), w, h);
  }
  const scale: [number, number] = [Math.floor(h / p.cropPct), Math.floor(w / p.cropPct)];
  let resized: RgbImage;
  if (p.cropMode === 'squash') {
    resized = resizePil(img, scale[1], scale[0], p.interpolation);
  } else if (p.cropMode === 'border') {
    // Fit the long side to the scale size keeping the aspect ratio; the crop then pads with black.
    const r = Math.min(scale[0] / img.height, scale[1] / img.width);
    resized = resizePil(img, Math.max(1, Math.round(img.width * r)), Math.max(1, Math.round(img.height * r)), p.interpolation);
  } else {
    const s = Math.min(scale[0], scale[1]);
    const [nw, nh] = img.width <= img.height ? [s, Math.trunc((s * img.height) / img.width)] : [Math.trunc((s * img.width) / img.height), s];
    resized = resizePil(img, nw, nh, p.interpolation);
  }
  return crop(resized, roundHalfEven((resized.width - w) / 2), roundHalfEven((resized.height - h) / 2), w, h);
}

/** uint8 HWC → normalized float32 CHW, in the float32 arithmetic of the reference. */
export function normalize(img: RgbImage, p: PreprocessConfig, out: Float32Array = new Float32Array(3 * img.width * img.height), offset = 0): Float32Array {
  const plane = img.width * img.height;
  const f = Math.fround;
  const scale = f(1 / 255);
  for (let c = 0; c < 3; c++) {
    const m = f(p.mean[c]!);
    const s = f(p.std[c]!);
    const o = offset + c * plane;
    for (let i = 0; i < plane; i++) {
      const v = img.data[3 * i + c]!;
      // torch: ToTensor divides by 255, Normalize subtracts and divides; Paddle multiplies by float32(1/255).
      out[o + i] = p.backend === 'pil' ? f(f(f(v / 255) - m) / s) : f(f(f(v * scale) - m) / s);
    }
  }
  return out;
}


/** RGBA pixels (a canvas' ImageData) to the RGB image the kernels take. */
export function fromRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, n = width * height; i < n; i++) {
    data[3 * i] = rgba[4 * i]!;
    data[3 * i + 1] = rgba[4 * i + 1]!;
    data[3 * i + 2] = rgba[4 * i + 2]!;
  }
  return { width, height, data };
}

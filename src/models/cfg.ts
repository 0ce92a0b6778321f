/** Helpers that hold the shared defaults of pretrained configs, as timm's `_cfg` does. */
import { IMAGENET_MEAN, IMAGENET_STD, type Interpolation, type KeyScheme, type PretrainedCfg, type WeightSource } from './types.js';

export const PADDLE_BUCKET = 'https://paddle-imagenet-models-name.bj.bcebos.com';
export const TIMM_RELEASES = 'https://github.com/huggingface/pytorch-image-models/releases/download';

export interface TimmCfgArgs {
  size?: number;
  cropPct?: number;
  interpolation?: Interpolation;
  testSize?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  firstConv?: string;
  classifier?: string;
  /** A direct .pth URL when the weights predate the hub (torchvision, GitHub releases). */
  url?: string;
  keys?: KeyScheme;
  license?: string;
  /** Weights exist only as a direct URL, not on the hub. */
  noHub?: boolean;
  cropMode?: 'center' | 'squash' | 'border';
}

/** A timm pretrained config: `arch.tag` on the hub (`timm/arch.tag/model.safetensors`) unless `noHub`. */
export function timmCfg(arch: string, tag: string, a: TimmCfgArgs = {}): PretrainedCfg {
  const size = a.size ?? 224;
  const weights: WeightSource = a.noHub
    ? { format: 'pth', url: a.url, keys: a.keys ?? 'timm', license: a.license }
    : { format: 'safetensors', hfHubId: `timm/${arch}.${tag}`, url: a.url, keys: 'timm', license: a.license };
  return {
    tag,
    inputSize: [3, size, size],
    testInputSize: a.testSize ? [3, a.testSize, a.testSize] : undefined,
    cropPct: a.cropPct ?? 0.875,
    cropMode: a.cropMode ?? 'center',
    interpolation: a.interpolation ?? 'bicubic',
    resizeBackend: 'pil',
    mean: a.mean ?? IMAGENET_MEAN,
    std: a.std ?? IMAGENET_STD,
    numClasses: 1000,
    firstConv: a.firstConv ?? 'conv1',
    classifier: a.classifier ?? 'fc',
    weights,
  };
}

export interface PaddleCfgArgs {
  crop?: number;
  resizeShort?: number;
  /** Path under the PaddleClas bucket, e.g. `dygraph/legendary_models/ResNet50_pretrained.pdparams`. */
  file: string;
  keys: KeyScheme;
  firstConv?: string;
  classifier?: string;
}

/** A PaddleClas eval config: OpenCV bilinear resize of the short side, centre crop, ImageNet mean/std. */
export function paddleCfg(name: string, a: PaddleCfgArgs): PretrainedCfg {
  const crop = a.crop ?? 224;
  const resizeShort = a.resizeShort ?? 256;
  return {
    tag: name,
    inputSize: [3, crop, crop],
    cropPct: crop / resizeShort,
    resizeShort,
    cropMode: 'center',
    interpolation: 'bilinear',
    resizeBackend: 'cv2',
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    numClasses: 1000,
    firstConv: a.firstConv ?? 'conv1',
    classifier: a.classifier ?? 'fc',
    weights: { format: 'pdparams', url: `${PADDLE_BUCKET}/${a.file}`, keys: a.keys },
  };
}

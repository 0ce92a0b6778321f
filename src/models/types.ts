import type { Graph } from '../ir/graph.js';
import type { HostTensor } from '../weights/tensor.js';

export type Interpolation = 'bilinear' | 'bicubic';
export type ResizeBackend = 'pil' | 'cv2';
export type CropMode = 'center' | 'squash' | 'border';

/** How a checkpoint's keys relate to ours: timm keys are ours; the others go through a key map. */
export type KeyScheme =
  | 'timm'
  | 'torchvision'
  | 'paddle-legendary'
  | 'paddle-modelzoo'
  | 'paddle-wsl'
  | 'paddle-res2net'
  | 'paddle-resnest'
  | 'paddle-regnet'
  | 'paddle-efficientnet'
  | 'paddle-mobilenetv3'
  | 'paddle-vit'
  | 'paddle-convnext';

export interface WeightSource {
  format: 'safetensors' | 'pth' | 'pdparams';
  /** Hugging Face hub repository (`timm/<arch>.<tag>`), file `model.safetensors`. */
  hfHubId?: string;
  /** Direct URL (torchvision, GitHub releases, PaddleClas' bucket). */
  url?: string;
  keys: KeyScheme;
  license?: string;
}

/** What the weights were trained and evaluated with (timm's pretrained_cfg, PaddleClas' eval transforms). */
export interface PretrainedCfg {
  /** timm weight tag (`ra2_in1k`) or PaddleClas weight name. */
  tag: string;
  inputSize: [number, number, number];
  /** Size the weights were tested best at, where the source names one (timm's test_input_size). */
  testInputSize?: [number, number, number];
  cropPct: number;
  /** PaddleClas' resize_short (OpenCV pipeline): the short side before the centre crop. */
  resizeShort?: number;
  cropMode: CropMode;
  interpolation: Interpolation;
  resizeBackend: ResizeBackend;
  mean: [number, number, number];
  std: [number, number, number];
  numClasses: number;
  firstConv: string;
  classifier: string;
  /** timm's classifier tuple beyond the first: more heads reset and trained with it (DeiT's `head_dist`). */
  extraClassifiers?: string[];
  weights?: WeightSource;
}

export interface BuildOptions {
  numClasses: number;
  inChans: number;
  /** Spatial input size [H, W]. */
  inputSize: [number, number];
  /** Stochastic depth (timm drop_path_rate): the last block's rate, linear in block index from 0. */
  dropPathRate?: number;
  /** Dropout before the classifier (timm drop_rate). */
  dropRate?: number;
}

export interface ModelEntry {
  /** Registry name: a timm architecture (`resnet50d`) or a PaddleClas model (`ResNet50_vd_ssld`). */
  name: string;
  family: string;
  source: 'timm' | 'paddleclas';
  /** Architecture this entry builds; weight variants (`_ssld`, `Fix_`) share their base's. */
  arch: string;
  build: (opts: BuildOptions) => Graph;
  /** Fit a checkpoint to this build before loading (a ViT's pos_embed resampled to the grid). */
  adaptCheckpoint?: (tensors: Map<string, HostTensor>, graph: Graph) => void;
  /** Pretrained configs; the first is the default (timm's default tag). */
  cfgs: PretrainedCfg[];
  /** Names in the other zoo with the same architecture and weight layout. */
  aliases: string[];
  description: string;
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];
export const INCEPTION_MEAN: [number, number, number] = [0.5, 0.5, 0.5];
export const INCEPTION_STD: [number, number, number] = [0.5, 0.5, 0.5];

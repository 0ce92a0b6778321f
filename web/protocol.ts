/** The messages between the page (web/client.ts) and the worker (web/worker.ts). */
import type { PreprocessConfig } from '../src/data/transforms.js';
import type { PretrainedCfg } from '../src/models/types.js';

export type ImagePayload =
  | { kind: 'bytes'; bytes: ArrayBuffer; type?: string }
  | { kind: 'bitmap'; bitmap: ImageBitmap }
  | { kind: 'pixels'; data: Uint8ClampedArray; width: number; height: number };

export interface CreateRequest {
  name: string;
  pretrained?: boolean;
  hubUrl?: string;
  numClasses?: number;
  inputSize?: number | [number, number];
  device?: 'auto' | 'webgpu' | 'wasm';
  precision?: 'fp32' | 'fp16';
  weights?: ArrayBuffer;
  weightsName?: string;
  offline?: boolean;
  seed?: number;
  init?: 'uniform' | 'timm';
  classNames?: string[];
}

export interface ModelInfo {
  handle: number;
  name: string;
  tag: string;
  cfg: PretrainedCfg;
  numClasses: number;
  inputSize: [number, number];
  preprocess: PreprocessConfig;
  device: 'webgpu' | 'wasm';
  precision: 'fp32' | 'fp16';
  params: number;
  notes: string[];
}

export interface Prediction {
  index: number;
  label: string;
  prob: number;
}

type R<Op extends string, A> = { id: number; op: Op; args: A };

export type Request =
  | R<'init', { ortUrl: string; wasmPaths?: string; threads?: number }>
  | R<'create', CreateRequest>
  | R<'preprocess', { handle: number; image: ImagePayload }>
  | R<'preprocessWith', { config: PreprocessConfig; image: ImagePayload }>
  | R<'classify', { handle: number; image: ImagePayload; topk: number }>
  | R<'features', { handle: number; image: ImagePayload }>
  | R<'run', { handle: number; data: Float32Array; shape: number[] }>
  | R<'dispose', { handle: number }>
  | R<'trainer', { handle: number; options: Record<string, unknown> }>
  | R<'trainStep', { trainer: number; data: Float32Array; shape: number[]; labels: number[]; lr?: number }>
  | R<'trainPreprocess', { handle: number; images: ImagePayload[]; train: boolean; seed?: number; epoch?: number; offset?: number; augment?: Record<string, unknown> }>
  | R<'save', { handle: number; what: 'safetensors' | 'onnx' | 'config' }>;

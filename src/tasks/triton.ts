/**
 * A Triton Inference Server model repository for an exported model (`tsimm export NAME --triton DIR`):
 *
 *   DIR/NAME/config.pbtxt      ModelConfig in protobuf text format (fields of Triton's model_config.proto)
 *   DIR/NAME/labels.txt        one class label per line, in index order (the logits output's label_filename)
 *   DIR/NAME/preprocess.json   the preprocessing a client must apply (as `export`'s .onnx.json sidecar)
 *   DIR/NAME/VERSION/model.onnx
 *
 * Triton's onnxruntime backend batches along the ONNX graph's symbolic first dimension, so `dims` leave it out
 * (max_batch_size > 0). Pure functions here; the command writes the files.
 */
import type { PreprocessConfig } from '../data/preprocess.js';
import { labelOf } from './classify.js';

export interface TritonTensor {
  name: string;
  /** Shape without the batch dimension. */
  dims: number[];
  /** Outputs that are classifications: the label file beside config.pbtxt. */
  labelFilename?: string;
}

export interface TritonModelConfig {
  name: string;
  maxBatchSize: number;
  /** One NCHW float32 image input. */
  input: TritonTensor;
  outputs: TritonTensor[];
  /** Default: powers of two up to maxBatchSize (and maxBatchSize itself). */
  preferredBatchSizes?: number[];
  /** How long Triton holds a request for a fuller batch (default 2000 µs; tsimm serve's own default is 0). */
  maxQueueDelayMicroseconds?: number;
  kind?: 'KIND_CPU' | 'KIND_GPU';
  instanceCount?: number;
  preprocess: PreprocessConfig;
  /** Recorded in `parameters` and the header comment (model name, tag, weights). */
  meta?: Record<string, string>;
}

/** Batch sizes worth waiting for: 2, 4, 8, ... ≤ max, and max itself (1 for a model that takes one at a time). */
export function preferredBatchSizes(max: number): number[] {
  const sizes: number[] = [];
  for (let b = 2; b <= max; b *= 2) sizes.push(b);
  if (sizes.at(-1) !== max) sizes.push(max);
  return sizes;
}

/** A protobuf text-format string literal. */
const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** The preprocessing as string parameters (ModelConfig.parameters is map<string, ModelParameter{string_value}>). */
export function preprocessParameters(p: PreprocessConfig): Record<string, string> {
  const r: Record<string, string> = {
    tsimm_input_size: p.size.join('x'),
    tsimm_mean: p.mean.join(','),
    tsimm_std: p.std.join(','),
    tsimm_crop_pct: String(p.cropPct),
    tsimm_crop_mode: p.cropMode,
    tsimm_interpolation: p.interpolation,
    tsimm_resize_backend: p.backend,
    tsimm_exif_rotate: String(p.exifRotate),
  };
  if (p.resizeShort !== undefined) r['tsimm_resize_short'] = String(p.resizeShort);
  return r;
}

/** config.pbtxt for `c`: Triton's documented fields only (name, platform, max_batch_size, input, output, ...). */
export function tritonConfig(c: TritonModelConfig): string {
  const p = c.preprocess;
  const dims = (d: number[]) => `[ ${d.join(', ')} ]`;
  const preferred = c.preferredBatchSizes ?? preferredBatchSizes(c.maxBatchSize);
  const params = { ...(c.meta ?? {}), ...preprocessParameters(p) };
  const lines = [
    `# Triton model configuration written by tsimm export --triton.`,
    `# Input: float32 NCHW [N, ${c.input.dims.join(', ')}], N <= ${c.maxBatchSize}. Preprocess each RGB image as the weights were evaluated:`,
    `#   ${p.backend === 'pil' ? 'PIL' : 'OpenCV'} ${p.interpolation} resize${p.backend === 'cv2' ? ` (short side ${p.resizeShort ?? Math.round(p.size[0] / p.cropPct)})` : ` (crop_pct ${p.cropPct})`}, ${p.cropMode} crop to ${p.size.join('x')},`,
    `#   scale to [0, 1], subtract mean ${p.mean.join('/')}, divide by std ${p.std.join('/')} (also in preprocess.json and the parameters below).`,
    `name: ${q(c.name)}`,
    `platform: "onnxruntime_onnx"`,
    `max_batch_size: ${c.maxBatchSize}`,
    `input [`,
    `  {`,
    `    name: ${q(c.input.name)}`,
    `    data_type: TYPE_FP32`,
    `    format: FORMAT_NCHW`,
    `    dims: ${dims(c.input.dims)}`,
    `  }`,
    `]`,
    `output [`,
    c.outputs
      .map((o) => [`  {`, `    name: ${q(o.name)}`, `    data_type: TYPE_FP32`, `    dims: ${dims(o.dims)}`, ...(o.labelFilename ? [`    label_filename: ${q(o.labelFilename)}`] : []), `  }`].join('\n'))
      .join(',\n'),
    `]`,
    `dynamic_batching {`,
    `  preferred_batch_size: ${dims(preferred)}`,
    `  max_queue_delay_microseconds: ${c.maxQueueDelayMicroseconds ?? 2000}`,
    `}`,
    `instance_group [`,
    `  {`,
    `    kind: ${c.kind ?? 'KIND_CPU'}`,
    `    count: ${c.instanceCount ?? 1}`,
    `  }`,
    `]`,
    ...Object.entries(params).map(([k, v]) => `parameters {\n  key: ${q(k)}\n  value: { string_value: ${q(v)} }\n}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** labels.txt: one label per line in index order (ImageNet short names for 1000 classes, a run's class names, else "class i"). */
export function tritonLabels(numClasses: number, classNames?: string[]): string {
  const lines: string[] = [];
  for (let i = 0; i < numClasses; i++) lines.push(labelOf(i, numClasses, classNames).label.replace(/[\r\n]+/g, ' '));
  return `${lines.join('\n')}\n`;
}

/** A Triton model name is a directory name: letters, digits, `_ . -` (no path separators). */
export function checkTritonName(name: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name);
}

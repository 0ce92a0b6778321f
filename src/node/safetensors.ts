/** safetensors files on disk: the core's reader and writer (src/weights/safetensors.ts) on a path. */
import { decodeSafetensors, encodeSafetensors, safetensorsIndex, type SafetensorsIndex } from '../weights/safetensors.js';
import type { HostTensor } from '../weights/tensor.js';
import { withFile } from './fileio.js';
import { writeChunksAtomic } from './files.js';

export function readSafetensorsIndex(path: string): SafetensorsIndex {
  return withFile(path, safetensorsIndex);
}

/** Load float tensors (integer ones such as `num_batches_tracked` are skipped). */
export function loadSafetensors(path: string, filter?: (name: string) => boolean): Map<string, HostTensor> {
  return withFile(path, (src) => decodeSafetensors(src, filter));
}

/** Write float32 tensors through a temp file and a rename. */
export function saveSafetensors(path: string, tensors: Map<string, HostTensor>, metadata?: Record<string, string>): void {
  writeChunksAtomic(path, encodeSafetensors(tensors, metadata));
}

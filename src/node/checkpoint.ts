/** Checkpoint files on disk: the core's readers (src/weights/checkpoint.ts, torch.ts) on a path. */
import { existsSync } from 'node:fs';
import type { Graph } from '../ir/graph.js';
import type { KeyScheme } from '../models/types.js';
import { decodeCheckpoint, decodePdparams, detectFormat as detectFormatOf, mapCheckpointFor, type CheckpointFormat } from '../weights/checkpoint.js';
import { InputError, type HostTensor } from '../weights/tensor.js';
import { decodeTorch } from '../weights/torch.js';
import { withFile } from './fileio.js';
import { readSafetensorsIndex } from './safetensors.js';

export type { CheckpointFormat };

function open<T>(path: string, f: Parameters<typeof withFile<T>>[1]): T {
  if (!existsSync(path)) throw new InputError(`${path} does not exist`);
  return withFile(path, f);
}

export function detectFormat(path: string): CheckpointFormat {
  return open(path, detectFormatOf);
}

export function loadTorch(path: string): Map<string, HostTensor> {
  return open(path, decodeTorch);
}

export function loadPdparams(path: string): Map<string, HostTensor> {
  return open(path, decodePdparams);
}

/** Tensors of a checkpoint file under its own keys. */
export function readCheckpoint(path: string): { format: CheckpointFormat; tensors: Map<string, HostTensor> } {
  return open(path, decodeCheckpoint);
}

/** Tensors of a checkpoint file under our keys for `graph` (not yet checked: applyWeights does that). */
export function readCheckpointFor(graph: Graph, path: string, scheme?: KeyScheme): { tensors: Map<string, HostTensor>; unmapped: string[]; scheme: KeyScheme } {
  return mapCheckpointFor(graph, readCheckpoint(path).tensors, scheme);
}

/**
 * The class count a checkpoint's classifier was trained with (its `classifier.weight` rows), or undefined when it
 * has none (a backbone). A timm-keyed safetensors file tells from its header; other files are read and key-mapped.
 */
export function checkpointHeadWidth(graph: Graph, classifier: string, path: string, scheme?: KeyScheme): number | undefined {
  const key = `${classifier}.weight`;
  if (detectFormat(path) === 'safetensors') {
    const entry = readSafetensorsIndex(path).tensors.get(key);
    if (entry) return entry.shape[0];
  }
  return readCheckpointFor(graph, path, scheme).tensors.get(key)?.shape[0];
}

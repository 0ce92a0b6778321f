/**
 * Any supported checkpoint → tensors under our (timm) keys: safetensors, PyTorch zip/legacy, PaddleClas
 * .pdparams. The format is read from the file's first bytes, not its name.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { Graph } from '../ir/graph.js';
import type { KeyScheme } from '../models/types.js';
import { detectScheme, mapKeys } from './keymaps.js';
import { unpickleNumpy, type NumpyArray } from './pickle.js';
import { decodeFloat, loadSafetensors, readSafetensorsIndex } from './safetensors.js';
import { InputError, type HostTensor } from './tensor.js';
import { findStateDict, loadTorch } from './torch.js';

export type CheckpointFormat = 'safetensors' | 'pth' | 'pdparams';

export function detectFormat(path: string): CheckpointFormat {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new InputError(`${path} does not exist`);
  }
  if (size < 8) throw new InputError(`${path} is ${size} bytes: not a checkpoint (truncated download?)`);
  const fd = openSync(path, 'r');
  const head = new Uint8Array(16);
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  // safetensors first: its 8-byte header length can start with any byte, 0x80 (a pickle's PROTO) included.
  const headerLen = Number(new DataView(head.buffer).getBigUint64(0, true));
  if (head[8] === 0x7b /* { */ && headerLen < size) return 'safetensors';
  if (head[0] === 0x50 && head[1] === 0x4b) return 'pth'; // zip
  if (head[0] === 0x80 && head[2] === 0x8a && head[3] === 0x0a) return 'pth'; // legacy torch magic number
  if (head[0] === 0x80) return 'pdparams'; // a plain pickle: numpy arrays
  throw new InputError(`${path} is not a checkpoint tsimm reads (safetensors, PyTorch .pth, PaddleClas .pdparams)`);
}

const NUMPY_FLOATS: Record<string, string> = { '<f4': 'F32', '<f2': 'F16', '<f8': 'F64' };

export function loadPdparams(path: string): Map<string, HostTensor> {
  const size = statSync(path).size;
  if (size > 2 ** 31 - 1) throw new InputError(`${path}: .pdparams over 2 GiB are not supported; convert it with paddle to .safetensors`);
  const obj = unpickleNumpy(new Uint8Array(readFileSync(path)), path);
  const sd = obj instanceof Map ? (obj as Map<string, unknown>) : findStateDict(obj, path);
  const out = new Map<string, HostTensor>();
  for (const [name, v] of sd) {
    const a = v as NumpyArray;
    if (a?.kind !== 'ndarray') continue;
    const dtype = NUMPY_FLOATS[a.dtype];
    if (!dtype) continue; // integer buffers
    if (a.fortran && a.shape.length > 1) throw new InputError(`${path}: ${name} is Fortran-ordered; re-save it C-ordered`);
    const n = a.shape.reduce((x, y) => x * y, 1);
    const bytes = n * ({ F32: 4, F16: 2, F64: 8 } as Record<string, number>)[dtype]!;
    if (a.data.byteLength !== bytes) throw new InputError(`${path}: ${name} has ${a.data.byteLength} bytes for shape [${a.shape.join(', ')}] ${a.dtype}; the file is corrupt`);
    out.set(name, { shape: a.shape, data: decodeFloat(dtype, a.data.slice(), name) });
  }
  return out;
}

/** Tensors of a checkpoint file under its own keys (synchronous, like every loader). */
export function readCheckpoint(path: string): { format: CheckpointFormat; tensors: Map<string, HostTensor> } {
  const format = detectFormat(path);
  if (format === 'safetensors') return { format, tensors: loadSafetensors(path) };
  if (format === 'pth') return { format, tensors: loadTorch(path) };
  return { format, tensors: loadPdparams(path) };
}

/** Tensors of a checkpoint under our keys for `graph` (not yet checked: applyWeights does that). */
export function readCheckpointFor(graph: Graph, path: string, scheme?: KeyScheme): { tensors: Map<string, HostTensor>; unmapped: string[]; scheme: KeyScheme } {
  const { tensors } = readCheckpoint(path);
  const s = scheme ?? detectScheme([...tensors.keys()]);
  const mapped = mapKeys(tensors, s, graph);
  return { ...mapped, scheme: s };
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

/** .npy files on disk: the core's parser and encoder (src/weights/npy.ts) on a path. */
import { readFileSync } from 'node:fs';
import { encodeNpy, parseNpy } from '../weights/npy.js';
import type { HostTensor } from '../weights/tensor.js';
import { writeChunksAtomic } from './files.js';

export function readNpy(path: string): HostTensor {
  return parseNpy(new Uint8Array(readFileSync(path)), path);
}

export function writeNpy(path: string, t: HostTensor): void {
  writeChunksAtomic(path, encodeNpy(t));
}

/**
 * Node's file writers: every file tsimm writes (ONNX, safetensors, .npy, reports) goes to a temp file and is
 * renamed into place, so a failure never leaves half a file under the final name. The core encodes to chunks;
 * these write them.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import type { Graph } from '../ir/graph.js';
import { buildOnnx, needsExternalData, type ExportOptions, type OnnxModel, type WeightMap } from '../onnx/export.js';

/** Write `path` through a temp file and a rename: `write` gets the temp file's descriptor; on failure it is removed. */
export function writeFileAtomic(path: string, write: (fd: number) => void): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    write(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Write chunks to `path` through a temp file and a rename, in pieces (Node 20 refuses single writes > 2 GiB). */
export function writeChunksAtomic(path: string, chunks: Uint8Array[]): void {
  writeFileAtomic(path, (fd) => {
    for (const c of chunks) writeAll(fd, c);
  });
}

/** Write `path` (and `path.data` when weights are external). Nothing is left half-written on failure. */
export function writeOnnx(path: string, graph: Graph, weights: WeightMap, opts: ExportOptions & { external?: boolean } = {}): OnnxModel {
  const location = opts.external || needsExternalData(graph, opts.float16) ? `${basename(path)}.data` : undefined;
  if (!location) {
    const model = buildOnnx(graph, weights, opts);
    writeChunksAtomic(path, model.chunks);
    return model;
  }
  // External data is streamed to the file as it is encoded: no folded copy of the whole model is ever held.
  let model!: OnnxModel;
  writeFileAtomic(`${path}.data`, (fd) => {
    model = buildOnnx(graph, weights, { ...opts, externalLocation: location, externalSink: (c) => writeAll(fd, c) });
  });
  writeChunksAtomic(path, model.chunks);
  return model;
}

function writeAll(fd: number, c: Uint8Array): void {
  let off = 0;
  while (off < c.byteLength) off += writeSync(fd, c, off, Math.min(c.byteLength - off, 1 << 30));
}

/** Positioned file reads in pieces (Node 20 refuses single reads over 2 GiB). */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { ByteSource } from '../weights/source.js';
import { InputError } from '../weights/tensor.js';

export function readAt(fd: number, position: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, Math.min(length - done, 1 << 30), position + done);
    if (n === 0) throw new InputError('unexpected end of file');
    done += n;
  }
  return buf;
}

/** Run `f` on a file as a ByteSource (positioned reads), closing it after. */
export function withFile<T>(path: string, f: (src: ByteSource) => T): T {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    return f({ name: path, size, read: (position, length) => readAt(fd, position, length) });
  } finally {
    closeSync(fd);
  }
}

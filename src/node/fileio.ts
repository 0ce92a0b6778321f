/** Positioned file reads in pieces (Node 20 refuses single reads over 2 GiB). */
import { readSync } from 'node:fs';
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

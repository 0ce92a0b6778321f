/**
 * Where a checkpoint's bytes come from, as the readers see it: a name for messages, a size, and positioned
 * reads. Node gives a file (src/node/fileio.ts: files over 2 GiB read in pieces), the page an ArrayBuffer.
 */
import { InputError } from './tensor.js';

export interface ByteSource {
  /** The file name or URL, for error messages. */
  readonly name: string;
  readonly size: number;
  /** `length` bytes from `position`, in a buffer of their own (readers may keep it). */
  read(position: number, length: number): Uint8Array;
}

/** Bytes in memory (a fetched file, a File's ArrayBuffer) as a source. */
export function bytesSource(bytes: Uint8Array | ArrayBuffer, name = 'checkpoint'): ByteSource {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name,
    size: b.byteLength,
    read(position, length) {
      if (position < 0 || position + length > b.byteLength) throw new InputError(`${name}: unexpected end of file`);
      return b.slice(position, position + length);
    },
  };
}

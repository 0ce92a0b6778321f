/** A host-side float32 tensor in row-major (C) order. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** A checkpoint or user input that cannot be used; the message names the problem and the fix. */
export class InputError extends Error {
  constructor(message: string) {
    // One line, whatever a hostile file put in the names it quotes: control bytes escaped, length bounded.
    const line = message.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    super(line.length > 2000 ? `${line.slice(0, 1997)}...` : line);
    this.name = 'InputError';
  }
}

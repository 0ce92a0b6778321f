/** A host-side float32 tensor in row-major (C) order. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** A checkpoint or user input that cannot be used; the message names the problem and the fix. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** Every failure tsimm/web reports: one line naming what happened and the fix, and a `code` a page can switch on. */
export type ErrorCode =
  | 'UNKNOWN_MODEL'
  | 'NO_WEIGHTS'
  | 'NOT_FOUND'
  | 'HTTP'
  | 'NETWORK'
  | 'OFFLINE'
  | 'QUOTA'
  | 'TRUNCATED'
  | 'CHECKSUM'
  | 'BAD_CHECKPOINT'
  | 'BAD_IMAGE'
  | 'BAD_INPUT'
  | 'WORKER';

export class TsimmError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TsimmError';
  }
}

/** A plain object that survives postMessage (an Error's class and extra fields do not). */
export interface WireError {
  message: string;
  code: ErrorCode;
}

export function toWire(e: unknown): WireError {
  if (e instanceof TsimmError) return { message: e.message, code: e.code };
  const err = e as Error;
  if (err?.name === 'UnknownModelError') return { message: err.message, code: 'UNKNOWN_MODEL' };
  if (err?.name === 'InputError') return { message: err.message, code: 'BAD_INPUT' };
  return { message: String(err?.message ?? e), code: 'WORKER' };
}

export function fromWire(w: WireError): TsimmError {
  return new TsimmError(w.code, w.message);
}

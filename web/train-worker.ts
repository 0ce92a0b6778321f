/** Fine-tuning in the worker (filled in by part 6). */
import type * as Ort from 'onnxruntime-web';
import type { RgbImage } from '../src/data/resize.js';
import { TsimmError } from './errors.js';
import type { ImagePayload, Request } from './protocol.js';

export interface WebTrainerHandle {
  handle: number;
}

export interface WorkerContext {
  get(handle: number): unknown;
  needOrt(): typeof Ort;
  preprocess(l: unknown, img: ImagePayload): Promise<Float32Array>;
  decode(img: ImagePayload, exifRotate: boolean): Promise<RgbImage>;
  trainers: Map<number, WebTrainerHandle>;
  post(msg: unknown, transfer?: Transferable[]): void;
}

export async function webTrainer(req: Request, _ctx: WorkerContext): Promise<{ result: unknown; transfer?: Transferable[] }> {
  throw new TsimmError('BAD_INPUT', `unknown request ${req.op}`);
}

/**
 * What a training run recorded beside its weights (config.json, written by `fit`): the architecture's shape, the
 * user's class names and the preprocessing, so `predict` and `eval` with `--weights RUN/best.safetensors` build
 * the model the weights fit and print the user's classes.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PreprocessConfig } from '../data/transforms.js';
import { InputError } from '../weights/tensor.js';

export interface RunConfig {
  model: string;
  numClasses: number;
  inChans: number;
  size: [number, number];
  classNames?: string[];
  preprocess?: PreprocessConfig;
}

/** The config.json beside `weights`, when there is one. */
export function runConfigFor(weights: string): RunConfig | undefined {
  const file = join(dirname(weights), 'config.json');
  if (!existsSync(file)) return undefined;
  let c: { model?: string; num_classes?: number; in_chans?: number; input_size?: number[]; class_names?: string[]; preprocess?: PreprocessConfig };
  try {
    c = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file} is not valid JSON (${(e as Error).message}); fix or remove it`);
  }
  if (!c.model || !c.num_classes || !c.input_size) return undefined;
  return {
    model: c.model,
    numClasses: c.num_classes,
    inChans: c.in_chans ?? 3,
    size: [c.input_size[1]!, c.input_size[2]!],
    ...(c.class_names ? { classNames: c.class_names } : {}),
    ...(c.preprocess ? { preprocess: c.preprocess } : {}),
  };
}

/** A weights path as given: a checkpoint file, or a run directory (its best.safetensors, else last.safetensors). */
export function runWeightsFile(path: string): string {
  if (!existsSync(path)) throw new InputError(`${path} does not exist; give a checkpoint file or a tsimm train run directory`);
  if (!statSync(path).isDirectory()) return path;
  for (const f of ['best.safetensors', 'last.safetensors']) if (existsSync(join(path, f))) return join(path, f);
  throw new InputError(`${path} is a directory without best.safetensors or last.safetensors; give a checkpoint file or a tsimm train run directory`);
}

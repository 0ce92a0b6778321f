/**
 * How a command finds a model's weights and the run they came from: `--weights FILE` (any checkpoint format, its
 * key scheme detected or `--keys`), else the registry's pretrained weights; a fine-tuned run's config.json gives
 * the classes, channels, size and preprocessing.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { PreprocessOverrides } from '../data/preprocess.js';
import type { Model } from '../model.js';
import { resolveModel, type KeyScheme } from '../models/index.js';
import { runConfigFor, type RunConfig } from '../node/run-config.js';
import { stderrProgress } from '../node/hub.js';
import { InputError } from '../weights/tensor.js';
import { UsageError, type Command } from './args.js';
import { checkpointClasses } from './grad.js';
import { weightsPath } from './paths.js';

export const SCHEMES: KeyScheme[] = ['timm', 'torchvision', 'paddle-legendary', 'paddle-modelzoo', 'paddle-wsl', 'paddle-res2net', 'paddle-resnest', 'paddle-regnet', 'paddle-efficientnet', 'paddle-mobilenetv3', 'paddle-vit', 'paddle-convnext'];

/** Where the weights come from, for every command that runs a model. */
export const WEIGHT_OPTIONS: Command['options'] = {
  weights: { type: 'string', arg: 'FILE', help: 'checkpoint (.safetensors, .pth, .pdparams) or a tsimm train run directory, instead of the pretrained weights' },
  keys: { type: 'string', arg: 'SCHEME', help: `key scheme of --weights (default: detected): ${SCHEMES.join(', ')}` },
};

export function keyScheme(k: string | undefined): KeyScheme | undefined {
  if (k !== undefined && !SCHEMES.includes(k as KeyScheme)) throw new UsageError(`--keys must be one of ${SCHEMES.join(', ')}`);
  return k as KeyScheme | undefined;
}

/** `file`, else the registry's pretrained weights when `pretrained` (cache, else download). */
export async function loadWeights(model: Model, file: string | undefined, keys: string | undefined, pretrained: boolean): Promise<void> {
  if (file) {
    // The CLI sizes the classifier from the checkpoint (trainedRun): a width that still disagrees is an error.
    model.newHeadAllowed = false;
    model.loadCheckpoint(weightsPath(file), keyScheme(keys));
  }
  else if (pretrained) {
    try {
      await model.loadPretrained({ onProgress: stderrProgress() });
    } catch (e) {
      if (e instanceof InputError) throw new InputError(`${e.message}; or pass --weights FILE`);
      throw e;
    }
  }
}

/**
 * A fine-tuned checkpoint's run: config.json beside the weights (tsimm train) gives the classes, channels, size and
 * preprocessing; without one, a classifier of another width than the registry's sets the class count.
 */
export function trainedRun(name: string, file: string | undefined, keys?: string): RunConfig | undefined {
  if (!file) return undefined;
  file = weightsPath(file);
  const run = runConfigFor(file);
  if (run) {
    if (resolveModel(run.model).entry.name !== resolveModel(name).entry.name) throw new InputError(`${file} was trained as ${run.model} (its config.json says so), not ${name}`);
    return run;
  }
  const classes = checkpointClasses(name, file, keyScheme(keys));
  const { cfg } = resolveModel(name);
  return classes && classes !== cfg.numClasses ? { model: name, numClasses: classes, inChans: 3, size: [cfg.inputSize[1], cfg.inputSize[2]] } : undefined;
}

/** The preprocessing a run recorded, as overrides (its size, crop, interpolation, mean/std). */
export function runPreprocess(run: RunConfig | undefined): PreprocessOverrides {
  if (!run?.preprocess) return {};
  const { size: _size, ...rest } = run.preprocess;
  return { ...rest, size: run.size };
}

/** Image files of a directory (sorted), for calibration sets. */
export function imagesIn(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir, { recursive: true }) as string[];
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read the directory ${dir}: ${code === 'ENOENT' ? 'it does not exist' : code === 'ENOTDIR' ? 'it is a file' : (e as Error).message}`);
  }
  const files = names.filter((f) => /\.(jpe?g|png|webp|gif|tiff?|bmp)$/i.test(f)).sort().map((f) => join(dir, f));
  if (!files.length) throw new InputError(`${dir} holds no images`);
  return files;
}

/**
 * Paths checked before any work, with what is wrong said in words (not a raw ENOENT/EISDIR naming a temporary
 * file after minutes of work).
 */
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { runWeightsFile } from '../node/run-config.js';
import { InputError } from '../weights/tensor.js';

function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** An input file that must exist and be a file. `what` names it for the message (`--input X.npy`). */
export function checkInputFile(path: string, what: string): string {
  const s = statOf(path);
  if (!s) throw new InputError(`${what} ${path}: no such file`);
  if (s.isDirectory()) throw new InputError(`${what} ${path} is a directory, not a file`);
  return path;
}

/** --weights: a checkpoint file, or a `tsimm train` run directory (its best, else last, weights), as createModel's `weights`. */
export function weightsPath(file: string): string {
  if (!statOf(file)) throw new InputError(`--weights ${file}: no such file or run directory`);
  return runWeightsFile(file);
}

/** The directory `path` would be written in must exist, be a directory and be writable. */
function checkParent(path: string, what: string): void {
  const parent = dirname(resolve(path));
  const p = statOf(parent);
  if (!p) throw new InputError(`${what} ${path}: the directory ${dirname(path)} does not exist; create it first`);
  if (!p.isDirectory()) throw new InputError(`${what} ${path}: ${dirname(path)} is not a directory`);
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    throw new InputError(`${what} ${path}: the directory ${dirname(path)} is not writable`);
  }
}

/** An output file: not an existing directory, in a directory that exists and is writable. */
export function checkOutputFile(path: string, what: string, example = basename(path) || 'out'): string {
  const s = statOf(path);
  if (s?.isDirectory()) throw new InputError(`${what} ${path} is a directory; give a file name, like ${join(path, example)}`);
  checkParent(path, what);
  return path;
}

/** An output directory: created if missing (with its parents), but not an existing file. */
export function checkOutputDir(path: string, what: string): string {
  const s = statOf(path);
  if (s && !s.isDirectory()) throw new InputError(`${what} ${path} is a file; it must be a directory (it will be created if missing)`);
  if (!s) {
    // The nearest existing ancestor must be a writable directory.
    let up = resolve(path);
    while (!statOf(up)) up = dirname(up);
    if (!statOf(up)!.isDirectory()) throw new InputError(`${what} ${path}: ${up} is a file, not a directory`);
    try {
      accessSync(up, constants.W_OK);
    } catch {
      throw new InputError(`${what} ${path}: ${up} is not writable`);
    }
  }
  return path;
}

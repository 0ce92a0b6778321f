/**
 * The tsimm commands, in the order `tsimm --help` lists them. Each parses its own options, prints results on stdout
 * and returns an exit code; each lives in its own file (small related ones share one).
 */
import type { Command } from './args.js';
import { bench } from './bench.js';
import { convert } from './convert.js';
import { evalCmd } from './eval.js';
import { exportCmd } from './export.js';
import { grad } from './grad.js';
import { infer, preprocessCmd } from './infer.js';
import { info, list, pull } from './models.js';
import { predict } from './predict.js';
import { quantize } from './quantize.js';
import { report } from './report.js';
import { serve } from './serve.js';
import { studio } from './studio.js';
import { train } from './train.js';
import { verify } from './verify.js';

export const COMMANDS: Record<string, Command> = {
  serve,
  studio,
  train,
  grad,
  bench,
  quantize,
  report,
  list,
  info,
  pull,
  predict,
  eval: evalCmd,
  preprocess: preprocessCmd,
  infer,
  export: exportCmd,
  convert,
  verify,
};

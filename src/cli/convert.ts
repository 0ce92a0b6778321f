/** `tsimm convert`: a checkpoint of any supported format and key scheme rewritten as timm-keyed float32 safetensors. */
import { createModel } from '../model.js';
import { saveSafetensors } from '../node/safetensors.js';
import { required, str, UsageError, type Command, type Values } from './args.js';
import { keyScheme, SCHEMES } from './model-args.js';
import { checkInputFile, checkOutputFile } from './paths.js';
import { out } from './options.js';
import { checkpointClasses } from './grad.js';

const scheme = (v: Values) => keyScheme(str(v, 'keys'));

export const convert: Command = {
  usage: 'IN OUT.safetensors --model NAME [--keys SCHEME]',
  summary: 'Normalize a checkpoint (.pth, .pdparams, .safetensors) into timm-keyed float32 safetensors for NAME.',
  options: {
    model: { type: 'string', short: 'm', arg: 'NAME', help: 'the architecture the checkpoint belongs to' },
    keys: { type: 'string', arg: 'SCHEME', help: `key scheme of IN (default: detected): ${SCHEMES.join(', ')}` },
  },
  async run(p, v) {
    if (p.length !== 2) throw new UsageError('expected IN and OUT');
    const name = required(v, 'model', 'the architecture decides the key map and the shapes checked');
    checkInputFile(p[0]!, 'IN');
    // A fine-tuned checkpoint keeps its own classifier width.
    const classes = checkpointClasses(name, p[0]!, scheme(v));
    const model = createModel(name, classes ? { numClasses: classes } : {});
    checkOutputFile(p[1]!, 'OUT', 'model.safetensors');
    model.loadCheckpoint(p[0]!, scheme(v));
    const tensors = model.stateDict();
    saveSafetensors(p[1]!, tensors, { format: 'pt', 'tsimm.model': model.name });
    out(`${p[1]}: ${tensors.size} tensors for ${model.name}`);
    return 0;
  },
};

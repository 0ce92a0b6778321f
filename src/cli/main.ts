#!/usr/bin/env node
/**
 * tsimm command line. Results go to stdout (`--json` for machines); logs and progress to stderr, only on a TTY.
 * Exit codes: 0 success, 1 failure (bad input, unknown model, failed check), 2 usage error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, type Command } from './args.js';
import { COMMANDS } from './commands.js';

function helpText(name: string, c: Command): string {
  const opts = Object.entries(c.options)
    .map(([k, o]) => {
      const head = `  --${k}${o.short ? `, -${o.short}` : ''}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
      // A long option gets its help on the next line rather than running into it.
      return head.length > 32 ? `${head}\n${' '.repeat(34)}${o.help}` : head.padEnd(34) + o.help;
    })
    .join('\n');
  return `usage: tsimm ${name} ${c.usage}\n\n${c.summary}\n${opts ? `\noptions:\n${opts}\n${'  --help, -h'.padEnd(34)}show this help\n` : ''}`;
}

/** What a usage error prints after its message: the usage line and where the full help is. */
function usageHint(name: string, c: Command): string {
  return `usage: tsimm ${name} ${c.usage}\nRun \`tsimm ${name} --help\` for the options.\n`;
}

function mainHelp(): string {
  const lines = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(10)} ${c.summary}`);
  return `usage: tsimm <command> [options]\n\nTypeScript Image Models: PaddleClas and timm ImageNet backbones on ONNX Runtime.\n\ncommands:\n${lines.join('\n')}\n\nRun \`tsimm <command> --help\` for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return name ? 0 : 2;
  }
  if (name === '--version') {
    process.stdout.write('0.1.0\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`tsimm: unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  const options: ParseArgsConfig['options'] = { help: { type: 'boolean', short: 'h' } };
  for (const [k, o] of Object.entries(command.options)) {
    options[k] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    process.stderr.write(`tsimm ${name}: ${(e as Error).message}\n${usageHint(name, command)}`);
    return 2;
  }
  if (parsed.values['help']) {
    process.stdout.write(helpText(name, command));
    return 0;
  }
  try {
    return await command.run(parsed.positionals, parsed.values as Record<string, string | boolean | string[] | undefined>);
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) {
      process.stderr.write(`tsimm ${name}: ${err.message}\n${usageHint(name, command)}`);
      return 2;
    }
    process.stderr.write(`tsimm ${name}: error: ${err.message}\n`);
    if (process.env['TSIMM_DEBUG']) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`tsimm: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);

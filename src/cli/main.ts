#!/usr/bin/env node
/**
 * tsimm command line. Results go to stdout (`--json` for machines); logs and progress to stderr, only on a TTY.
 * Exit codes: 0 success, 1 failure (bad input, unknown model, failed check), 2 usage error. Every error is one
 * line on stderr, `tsimm COMMAND: error: ...`.
 */
import { readFileSync } from 'node:fs';
import { UsageError, type Command } from './args.js';
import { COMMANDS } from './commands.js';
import { closeWords, parseCommand } from './parse.js';

function helpText(name: string, c: Command): string {
  const opts = Object.entries(c.options)
    .map(([k, o]) => {
      const names = [`--${k}`, ...(o.aliases ?? []).map((a) => `--${a}`)].join(', ');
      const head = `  ${names}${o.short ? `, -${o.short}` : ''}${o.type === 'string' ? ` ${o.optionalValue ? `[${o.arg ?? 'VALUE'}]` : (o.arg ?? 'VALUE')}` : ''}`;
      // A long option gets its help on the next line rather than running into it.
      return head.length > 32 ? `${head}\n${' '.repeat(34)}${o.help}` : head.padEnd(34) + o.help;
    })
    .join('\n');
  return `usage: tsimm ${name} ${c.usage}\n\n${c.summary}\n${opts ? `\noptions:\n${opts}\n${'  --help, -h'.padEnd(34)}show this help\n` : ''}`;
}

function mainHelp(): string {
  const lines = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(10)} ${c.summary}`);
  lines.push(`  ${'version'.padEnd(10)} Print the tsimm version (also --version).`);
  return `usage: tsimm <command> [options]\n\nTypeScript Image Models: PaddleClas and timm ImageNet backbones on ONNX Runtime.\n\ncommands:\n${lines.join('\n')}\n\nRun \`tsimm <command> --help\` for a command's options.\n`;
}

/** The package's version (package.json two levels up from src/cli and dist/cli alike). */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    // No command is a usage error: the help goes to stderr, as any usage error's text does.
    process.stderr.write(mainHelp());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp());
    return 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    const close = closeWords(name, [...Object.keys(COMMANDS), 'version']);
    process.stderr.write(`tsimm: error: unknown command "${name}"${close.length ? `; did you mean ${close.join(', ')}?` : ''} (commands: ${Object.keys(COMMANDS).join(', ')}, version)\n`);
    return 2;
  }
  const usage = (message: string) => {
    process.stderr.write(`tsimm ${name}: error: ${message} (see tsimm ${name} --help)\n`);
    return 2;
  };
  let parsed: ReturnType<typeof parseCommand>;
  try {
    parsed = parseCommand(rest, command);
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    throw e;
  }
  if (parsed.values['help']) {
    process.stdout.write(helpText(name, command));
    return 0;
  }
  try {
    return await command.run(parsed.positionals, parsed.values);
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) return usage(err.message);
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
    process.stderr.write(`tsimm: error: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);

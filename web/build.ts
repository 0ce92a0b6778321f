/**
 * Bundle tsimm/web for the browser: dist/web/tsimm-web.js (the page's module) and dist/web/tsimm-worker.js (the
 * worker it starts), both ES modules. onnxruntime-web stays external: the page maps it (import map or bundler)
 * and the worker imports the URL the page resolved. Every Node built-in is refused: the page's import graph
 * must not reach one (the core imports no `node:` module; Node's adapters live in src/node/).
 */
import { build, type Metafile, type Plugin } from 'esbuild';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Fails the build on an import of a Node built-in, naming the file that imports it. */
export const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (BUILTINS.has(args.path) || args.path.startsWith('node:')) {
        return { errors: [{ text: `${args.importer.replace(ROOT, '')} imports the Node built-in "${args.path}": the page cannot have it (move the I/O to src/node/)` }] };
      }
      return undefined;
    });
  },
};

export interface WebBuild {
  main: string;
  worker: string;
  metafile: Metafile;
}

/** Write `outfile` and tsimm-worker.js beside it. */
export async function buildWeb(outfile = 'dist/web/tsimm-web.js', o: { minify?: boolean } = {}): Promise<string> {
  return (await buildWebBundles(outfile, o)).main;
}

export async function buildWebBundles(outfile = 'dist/web/tsimm-web.js', o: { minify?: boolean } = {}): Promise<WebBuild> {
  const worker = join(dirname(outfile), 'tsimm-worker.js');
  const labels = readFileSync(join(ROOT, 'data/imagenet1k-labels.tsv'), 'utf8');
  const common = {
    bundle: true,
    format: 'esm' as const,
    platform: 'browser' as const,
    target: 'es2022',
    external: ['onnxruntime-web'],
    logLevel: 'silent' as const,
    metafile: true,
    minify: o.minify ?? false,
    plugins: [noNodeBuiltins],
  };
  const [a, b] = await Promise.all([
    build({ ...common, entryPoints: [join(ROOT, 'web/tsimm-web.ts')], outfile }),
    build({ ...common, entryPoints: [join(ROOT, 'web/worker.ts')], outfile: worker, define: { __TSIMM_IMAGENET_TSV__: JSON.stringify(labels) } }),
  ]);
  return { main: outfile, worker, metafile: { inputs: { ...a.metafile!.inputs, ...b.metafile!.inputs }, outputs: { ...a.metafile!.outputs, ...b.metafile!.outputs } } };
}

/**
 * Type declarations for `tsimm/web` (package.json points its `types` at `<dir>/types/web/tsimm-web.d.ts`): the
 * entry and the src files it imports, emitted by tsc so they cannot drift from the code.
 */
export function buildWebTypes(outDir = 'dist/web/types'): string {
  const program = ts.createProgram([join(ROOT, 'web/tsimm-web.ts')], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    declaration: true,
    emitDeclarationOnly: true,
    rootDir: ROOT,
    outDir,
    // Node's types only so that shared src files type-check; a browser consumer never needs them (skipLibCheck).
    types: ['node'],
  });
  const r = program.emit();
  const errors = ts.getPreEmitDiagnostics(program).concat(r.diagnostics).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) throw new Error(ts.formatDiagnostics(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' }));
  return join(outDir, 'web/tsimm-web.d.ts');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildWeb(process.argv[2], { minify: true });
  buildWebTypes(join(dirname(out), 'types'));
}

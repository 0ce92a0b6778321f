/**
 * Bundle the browser entry (web/tsimm-web.ts) into one ES module; onnxruntime-web stays an external import the
 * page maps to its own copy (import map or bundler). `npm run build:web` writes dist/web/tsimm-web.js.
 */
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export async function buildWeb(outfile = 'dist/web/tsimm-web.js'): Promise<string> {
  await build({
    entryPoints: [fileURLToPath(new URL('./tsimm-web.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external: ['onnxruntime-web'],
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

/**
 * Type declarations for `tsimm/web` (package.json points its `types` at `<dir>/types/web/tsimm-web.d.ts`): the
 * entry and the src files it imports, emitted by tsc so they cannot drift from the code.
 */
export function buildWebTypes(outDir = 'dist/web/types'): string {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const program = ts.createProgram([join(root, 'web/tsimm-web.ts')], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    skipLibCheck: true,
    declaration: true,
    emitDeclarationOnly: true,
    rootDir: root,
    outDir,
    // Node's types only so that shared src files type-check; a browser consumer never needs them (skipLibCheck).
    types: ['node'],
  });
  const r = program.emit();
  const errors = ts.getPreEmitDiagnostics(program).concat(r.diagnostics).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) throw new Error(ts.formatDiagnostics(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' }));
  return join(outDir, 'web/tsimm-web.d.ts');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildWeb(process.argv[2]);
  buildWebTypes(join(dirname(out), 'types'));
}

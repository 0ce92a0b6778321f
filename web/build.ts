/**
 * Bundle the browser entry (web/tsimm-web.ts) into one ES module; onnxruntime-web stays an external import the
 * page maps to its own copy (import map or bundler). `npm run build:web` writes dist/web/tsimm-web.js.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

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

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildWeb(process.argv[2]);

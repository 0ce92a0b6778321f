/** ImageNet-1k class names (data/imagenet1k-labels.tsv, inlined by web/build.ts): the first name of each synset. */
declare const __TSIMM_IMAGENET_TSV__: string | undefined;

let cached: string[] | undefined;

export function imagenetLabels(): string[] {
  if (!cached) {
    const tsv = typeof __TSIMM_IMAGENET_TSV__ === 'string' ? __TSIMM_IMAGENET_TSV__ : '';
    cached = tsv
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split('\t')[2]!.split(',')[0]!.trim());
    if (cached.length !== 1000) cached = Array.from({ length: 1000 }, (_, i) => `class ${i}`);
  }
  return cached;
}

/** Stands in for sharp in the GPU bundle (prepare.sh): benchmarks decode no images, and sharp is native code. */
export default function sharp(): never {
  throw new Error('this tsimm bundle has no image decoder (sharp): it benchmarks random inputs only');
}

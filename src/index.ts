/** tsimm public API. */
export { createModel, Model, type CreateOptions, type ParamInfo } from './model.js';
export { allEntries, closestNames, listModels, resolveModel, UnknownModelError } from './models/index.js';
export type { BuildOptions, ModelEntry, PretrainedCfg, WeightSource } from './models/types.js';
export { countGraph, paddleModelStat, type Counts, type LayerCount } from './ir/count.js';
export { Graph, ShapeError, type Shape } from './ir/graph.js';
export { buildOnnx, writeOnnx, type ExportOptions, type WeightMap } from './onnx/export.js';
export { createSession, runSession, type Session, type SessionOptions } from './runtime/session.js';
export { loadSafetensors, saveSafetensors, readSafetensorsIndex } from './weights/safetensors.js';
export { readNpy, writeNpy } from './weights/npy.js';
export { InputError, type HostTensor } from './weights/tensor.js';
export { verifySeeds, loadSeeds, formatVerify } from './tasks/verify.js';

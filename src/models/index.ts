/** Every model family, registered on import. */
import './resnet.js';

export { allEntries, closestNames, listModels, resolveModel, UnknownModelError } from './registry.js';
export type { ListOptions, Resolved } from './registry.js';
export * from './types.js';

/** Every model family, registered on import. */
import './resnet.js';
import './res2net.js';
import './resnest.js';
import './regnet.js';
import './efficientnet.js';
import './mobilenetv3.js';
import './mobilenetv3-paddle.js';
import './efficientnetv2.js';
import './convnext.js';
import './vit.js';

export { allEntries, closestNames, listModels, resolveModel, UnknownModelError } from './registry.js';
export type { ListOptions, Resolved } from './registry.js';
export * from './types.js';

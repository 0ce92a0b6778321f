/** `--device` and `--allow-cpu-fallback`, for every command that runs a session. */
import { DEVICES, type Device, type DeviceOptions } from '../runtime/device.js';
import { oneOf, type Command, type Values } from './args.js';

export const DEVICE_OPTIONS: Command['options'] = {
  device: { type: 'string', arg: DEVICES.join('|'), help: 'where ONNX Runtime computes: cpu (default, or $TSIMM_DEVICE), webgpu (Vulkan on Linux), cuda' },
  'allow-cpu-fallback': { type: 'boolean', help: 'if the device cannot be used, warn and run on the CPU instead of failing' },
};

/** The session options the two flags give (spread them into createSession / model.createSession / BenchConfig). */
export function deviceFrom(v: Values): DeviceOptions {
  const device = oneOf<Device>(v, 'device', DEVICES);
  return { ...(device ? { device } : {}), ...(v['allow-cpu-fallback'] ? { allowCpuFallback: true } : {}) };
}

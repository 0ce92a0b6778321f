/**
 * Where an ONNX Runtime session runs: the CPU EP, the WebGPU EP (Dawn; Vulkan on Linux) or the CUDA EP.
 * Inputs and outputs stay on the host either way (no IO binding): a device changes where the graph computes.
 *
 * A device that cannot be used is an InputError of one line naming the device, the reason and the fix. Nothing
 * falls back to the CPU unless asked (`allowCpuFallback`), and then with one warning on stderr.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { InputError } from '../weights/tensor.js';

export type Device = 'cpu' | 'webgpu' | 'cuda';
export const DEVICES: readonly Device[] = ['cpu', 'webgpu', 'cuda'];

export interface DeviceOptions {
  /** Default `cpu`, or the TSIMM_DEVICE environment variable's device. */
  device?: Device;
  /** When the device cannot be used: warn once on stderr and run on the CPU instead of failing. */
  allowCpuFallback?: boolean;
}

/** The device a session gets: the one asked for, else TSIMM_DEVICE (checked), else the CPU. */
export function resolveDevice(device?: Device): Device {
  if (device) {
    if (!DEVICES.includes(device)) throw new InputError(`unknown device "${String(device)}"; devices: ${DEVICES.join(', ')}`);
    return device;
  }
  const env = process.env['TSIMM_DEVICE'];
  if (!env) return 'cpu';
  if (!DEVICES.includes(env as Device)) throw new InputError(`TSIMM_DEVICE="${env}" is no device; set it to one of ${DEVICES.join(', ')}`);
  return env as Device;
}

/** The EP list for a device. The CPU EP is always registered behind the others: it runs nodes they lack. */
export function executionProviders(device: Device): ort.InferenceSession.ExecutionProviderConfig[] {
  // NCHW is our graphs' layout and the EP's default in Node; TSIMM_WEBGPU_LAYOUT=NHWC lets a benchmark try the other.
  if (device === 'webgpu') return [{ name: 'webgpu', preferredLayout: process.env['TSIMM_WEBGPU_LAYOUT'] === 'NHWC' ? 'NHWC' : 'NCHW' }];
  if (device === 'cuda') return ['cuda'];
  return ['cpu'];
}

export const CUDA_INSTALL =
  'install the CUDA EP with: npm install onnxruntime-node --onnxruntime-node-install=cuda12 (or ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node); it needs CUDA 12 and cuDNN 9';

/** onnxruntime-node's native folder (where the CUDA EP's libraries go when installed). */
function ortBinDir(): string | undefined {
  try {
    const pkg = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
    return join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

/** Before a session: a device this onnxruntime-node cannot run at all (cuda without its EP libraries). Undefined: go ahead. */
export function unavailableReason(device: Device): string | undefined {
  if (device !== 'cuda') return undefined;
  const cuda = ort.listSupportedBackends().find((b) => b.name === 'cuda');
  if (!cuda) return `device cuda: this onnxruntime-node (${process.platform}/${process.arch}) was built without CUDA; use --device webgpu or cpu`;
  // Listed but not bundled: the EP is a separate download (linux/x64) that offline or `skip` installs leave out.
  const bin = ortBinDir();
  if (!cuda.bundled && bin && !existsSync(join(bin, 'libonnxruntime_providers_cuda.so'))) {
    return `device cuda: onnxruntime-node's CUDA EP is not installed (no libonnxruntime_providers_cuda.so in ${bin}); ${CUDA_INSTALL}`;
  }
  return undefined;
}

/** Whether the dynamic linker can find libvulkan.so.1 (as Dawn dlopens it): LD_LIBRARY_PATH, the usual dirs, the ld cache. */
export function hasVulkanLoader(env: Record<string, string | undefined> = process.env): boolean {
  const dirs = (env['LD_LIBRARY_PATH'] ?? '').split(delimiter).filter(Boolean);
  dirs.push('/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib');
  if (dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')))) return true;
  try {
    return /libvulkan\.so\.1\b/.test(execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return false;
  }
}

const SWIFTSHADER = "VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json LD_LIBRARY_PATH=/usr/lib/chromium (Chromium's SwiftShader, a CPU Vulkan)";

/** Why the WebGPU EP found no adapter and the fix, from what the process can see (Dawn's own reason goes to stderr only). */
function noAdapter(): string {
  if (process.platform !== 'linux') return 'no WebGPU adapter; check the GPU driver';
  for (const key of ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES']) {
    const missing = (process.env[key] ?? '').split(delimiter).filter((f) => f && !existsSync(f));
    if (missing.length) return `no WebGPU adapter: ${key} names ${missing.join(', ')}, which does not exist; point it at a driver manifest (.json) or unset it`;
  }
  if (!hasVulkanLoader()) {
    return `no WebGPU adapter: no Vulkan loader (libvulkan.so.1) on the library path; install it (apt-get install libvulkan1) or add its folder to LD_LIBRARY_PATH, e.g. ${SWIFTSHADER}`;
  }
  return `no WebGPU adapter: the Vulkan loader found no driver; install one (mesa-vulkan-drivers, or the GPU driver's Vulkan ICD) or name its manifest, e.g. ${SWIFTSHADER}`;
}

/**
 * A session-creation failure on `device` as a one-line InputError with the fix, when it is the device's doing;
 * undefined for anything else (a bad model fails the same way on every device and keeps its own error).
 */
export function deviceError(device: Device, e: unknown): InputError | undefined {
  if (device === 'cpu') return undefined;
  const message = e instanceof Error ? e.message : String(e);
  if (device === 'webgpu') {
    if (/Failed to get a WebGPU adapter|No supported adapters|RequestAdapter/i.test(message)) return new InputError(`device webgpu: ${noAdapter()}`);
    if (/requires f16 but the device does not support it/.test(message)) {
      return new InputError('device webgpu: this WebGPU adapter has no shader-f16, which an fp16 graph needs (SwiftShader has none); run fp32 on it, or fp16 on a GPU whose adapter has shader-f16');
    }
    if (/webgpu|dawn|vulkan/i.test(message)) return new InputError(`device webgpu: ${firstLine(message)}`);
    return undefined;
  }
  if (/providers_cuda|providers_shared|Failed to load shared library/i.test(message)) {
    return new InputError(`device cuda: onnxruntime-node could not load its CUDA EP (${firstLine(message)}); ${CUDA_INSTALL}`);
  }
  if (/cuda|cudnn|cublas/i.test(message)) return new InputError(`device cuda: ${firstLine(message)}; check the NVIDIA driver, CUDA 12 and cuDNN 9 (nvidia-smi, ldconfig -p | grep -E 'cudart|cudnn')`);
  return undefined;
}

/** ONNX Runtime prefixes its messages with a source path; the reason is what follows, on the first line. */
function firstLine(message: string): string {
  const line = message.split('\n').find((l) => l.trim()) ?? message;
  return line.replace(/^\S*onnxruntime_src\/\S+\s+/, '').replace(/^\S+\.cc:\d+\s+/, '').trim();
}

const warned = new Set<string>();
/** The one stderr line of a fallback to the CPU, once per reason and process. */
export function warnCpuFallback(reason: string): void {
  if (warned.has(reason)) return;
  warned.add(reason);
  process.stderr.write(`tsimm: warning: ${reason}; running on the CPU instead (allowCpuFallback)\n`);
}

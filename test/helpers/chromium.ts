/**
 * Debian's Chromium for the browser tests (driven by playwright-core), and its SwiftShader Vulkan driver, which
 * also gives onnxruntime-node's WebGPU EP an adapter in Node. Tests skip with these reasons when they are absent.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const CHROMIUM = process.env['TSIMM_CHROMIUM'] ?? '/usr/bin/chromium';
export const NO_CHROMIUM: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium); .ci/run installs it`;
/** No sandbox (root in CI) and nothing that reaches the network. */
export const FLAGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** WebGPU in the page, on SwiftShader. */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

const SWIFTSHADER_DIR = process.env['TSIMM_SWIFTSHADER_DIR'] ?? '/usr/lib/chromium';
export const SWIFTSHADER_ICD = join(SWIFTSHADER_DIR, 'vk_swiftshader_icd.json');
export const NO_SWIFTSHADER: string | false =
  existsSync(SWIFTSHADER_ICD) && existsSync(join(SWIFTSHADER_DIR, 'libvulkan.so.1'))
    ? false
    : `Chromium's SwiftShader Vulkan driver is absent (${SWIFTSHADER_ICD} and libvulkan.so.1 beside it; apt-get install chromium)`;
/** The environment for a child process whose WebGPU EP runs on SwiftShader (the Vulkan loader reads it at start). */
export const SWIFTSHADER_ENV = { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD, LD_LIBRARY_PATH: [SWIFTSHADER_DIR, process.env['LD_LIBRARY_PATH']].filter(Boolean).join(':') };

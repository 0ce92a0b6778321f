#!/usr/bin/env bash
# Builds bench/gpu/dist/: everything run.sh needs on a GPU machine that has no Node (README.md beside this file).
#   dist/node.xz                 this machine's Node 20, stripped and xz-compressed
#   dist/app/bin/gpu-bench.mjs   bench.ts bundled with the library (esbuild; sharp stubbed out)
#   dist/app/bin/tsimm.mjs       the CLI, bundled the same way
#   dist/data/                   the seed table and labels (the bundles read ../../data/)
#   dist/node_modules/           onnxruntime-node (JS, binding, libonnxruntime.so.1.xz) and onnxruntime-common
#   dist/gl/*.deb                Debian's Vulkan loader and GL dispatch libraries (the device README's list)
set -euo pipefail
cd "$(dirname "$0")/../.."
D=bench/gpu/dist
rm -rf "$D"
mkdir -p "$D/app/bin" "$D/data" "$D/gl"

NODE=$(command -v node)
strip -o "$D/node" "$NODE" # the Debian build carries debug info: 99 → 86 MB before xz
xz -T0 -6 "$D/node"

for entry in bench/gpu/bench.ts:gpu-bench src/cli/main.ts:tsimm; do
  npx esbuild "${entry%%:*}" --bundle --platform=node --format=esm --target=node20 --log-level=warning \
    --external:onnxruntime-node --alias:sharp=./bench/gpu/sharp-stub.ts \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile="$D/app/bin/${entry##*:}.mjs"
done
cp data/seed-models.json data/imagenet1k-labels.tsv "$D/data/"

ORT=node_modules/onnxruntime-node
BIN=bin/napi-v6/linux/x64
mkdir -p "$D/$ORT/dist" "$D/$ORT/$BIN" "$D/node_modules/onnxruntime-common"
cp "$ORT/package.json" "$D/$ORT/"
cp "$ORT"/dist/*.js "$D/$ORT/dist/"
cp "$ORT/$BIN/onnxruntime_binding.node" "$D/$ORT/$BIN/"
xz -T0 -6 -c "$ORT/$BIN/libonnxruntime.so.1" >"$D/$ORT/$BIN/libonnxruntime.so.1.xz"
cp -r node_modules/onnxruntime-common/package.json node_modules/onnxruntime-common/dist "$D/node_modules/onnxruntime-common/"
find "$D/node_modules" -name '*.map' -delete

# Debian's packages, downloaded (not installed) for amd64 whatever this machine is; run.sh unpacks them there
# only where no libvulkan.so.1 is installed.
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/tsimm-amd64-lists'
mkdir -p /tmp/tsimm-amd64-lists/partial
apt-get $o update -qq
(cd "$D/gl" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)

du -sh "$D"
du -ab "$D" | sort -n | tail -5

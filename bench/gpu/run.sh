#!/usr/bin/env bash
# The GPU benchmark, on a machine with an NVIDIA driver and PyTorch but no Node (README.md beside this file).
# Needs bench/gpu/dist/ from prepare.sh (carried there). Writes to $OUT (default bench/gpu/out):
#   tsimm.json, manifest.json, torch.json, results.md, tsimm.log, torch.log, env.txt
# Budget for a 600 s run: unpack ~10 s, tsimm ≤ 300 s of models + 45 s of fp16 numerics (killed at 380 s),
# torch ≤ 120 s (killed at 150 s).
#
#   bench/gpu/run.sh [--device webgpu|cuda|cpu] [--models A,B] [--tsimm-seconds 300] [--torch-seconds 120] [--tiny] [--no-torch] [-- bench.ts options]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIST=$HERE/dist
OUT=${OUT:-$HERE/out}
DEVICE=webgpu
TSIMM_S=300
TORCH_S=120
TORCH=1
PY=${PYTHON:-python3}
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --models) ARGS+=(--models "$2"); shift 2 ;;
    --tsimm-seconds) TSIMM_S=$2; shift 2 ;;
    --torch-seconds) TORCH_S=$2; shift 2 ;;
    --no-torch) TORCH=0; shift ;;
    # A check of the plumbing, not a measurement: small inputs, few runs.
    --tiny) ARGS+=(--size 64 --batch 1,2 --warmup 1 --min-runs 3 --min-seconds 0 --check ResNet18); shift ;;
    --) shift; ARGS+=("$@"); break ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -f "$DIST/node.xz" ] || { echo "run.sh: $DIST is missing: run bench/gpu/prepare.sh first (and carry bench/gpu/dist)" >&2; exit 1; }
mkdir -p "$OUT"
T0=$(date +%s)
unxz_to() { # xz where installed, else Python's lzma
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
WORK=${TMPDIR:-/tmp}/tsimm-gpu-$(stat -c %Y "$DIST/node.xz") # a rebuilt dist unpacks afresh
mkdir -p "$WORK"
NODE=$WORK/node
[ -x "$NODE" ] || { unxz_to "$DIST/node.xz" "$NODE.tmp" && chmod +x "$NODE.tmp" && mv "$NODE.tmp" "$NODE"; }
# ONNX Runtime unpacks beside Node, not into dist/ (which then stays small enough to carry): LD_LIBRARY_PATH is
# searched before the binding's RUNPATH ($ORIGIN).
mkdir -p "$WORK/lib"
[ -f "$WORK/lib/libonnxruntime.so.1" ] || unxz_to "$DIST/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1.xz" "$WORK/lib/libonnxruntime.so.1"
export LD_LIBRARY_PATH=$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

if [ "$DEVICE" = webgpu ]; then
  # Dawn dlopens libvulkan.so.1; the driver's ICD names libGLX_nvidia, which wants glvnd's dispatch library.
  have_loader() {
    ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' && return 0
    local d
    for d in ${LD_LIBRARY_PATH//:/ }; do [ -f "$d/libvulkan.so.1" ] && return 0; done
    return 1
  }
  if ! have_loader; then
    if [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
      for f in "$DIST"/gl/*.deb; do dpkg -x "$f" /; done
      ldconfig
    else
      for f in "$DIST"/gl/*.deb; do dpkg-deb -x "$f" "$WORK/gl"; done
      export LD_LIBRARY_PATH=$WORK/gl/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    fi
  fi
  if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
    for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/icd.d/nvidia_icd.json; do
      if [ -f "$f" ]; then export VK_DRIVER_FILES=$f VK_ICD_FILENAMES=$f; break; fi
    done
  fi
  f=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$f" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$f
fi
GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
export TSIMM_GPU_NAME=${GPU:-$(uname -m) CPU}
{
  echo "gpu: ${GPU:-none}"
  echo "node: $("$NODE" --version)"
  echo "vulkan loader: $(ldconfig -p 2>/dev/null | grep -m1 'libvulkan\.so\.1 ' || echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}")"
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
  echo "python: $("$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "unpacked in $(($(date +%s) - T0)) s"
} | tee "$OUT/env.txt"

timeout -k 5 $((TSIMM_S + 80)) "$NODE" "$DIST/app/bin/gpu-bench.mjs" bench --device "$DEVICE" --deadline "$TSIMM_S" --check-deadline $((TSIMM_S + 45)) \
  --precision fp32,fp16 --batch 1,4,8 --warmup 3 --min-runs 10 --min-seconds 0.2 --seeds "$DIST/data/seed-models.json" --out "$OUT" "${ARGS[@]}" 2>&1 | tee "$OUT/tsimm.log"
echo "tsimm phase: exit ${PIPESTATUS[0]}, $(($(date +%s) - T0)) s in" | tee -a "$OUT/env.txt"
if [ "$TORCH" = 1 ] && [ -f "$OUT/manifest.json" ]; then
  timeout -k 5 $((TORCH_S + 30)) "$PY" "$HERE/torch_peer.py" "$OUT/manifest.json" "$OUT/torch.json" --deadline "$TORCH_S" 2>&1 | tee "$OUT/torch.log"
  echo "torch phase: exit ${PIPESTATUS[0]}, $(($(date +%s) - T0)) s in" | tee -a "$OUT/env.txt"
fi
"$NODE" "$DIST/app/bin/gpu-bench.mjs" report "$OUT" --seeds "$DIST/data/seed-models.json" >"$OUT/results.md"
cat "$OUT/results.md"

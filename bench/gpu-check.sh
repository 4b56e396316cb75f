#!/usr/bin/env bash
# GPU check for the webgpu backend, for a machine with an NVIDIA GPU and its
# Vulkan driver: runs the parity tests (every backend against the float64
# reference and the real cases), then times the backend on
# U = C = 32768, D = 256, k = 10 with CX and prints effective TFLOP/s
# (2 * U * C * D / seconds) next to the GPU's name.
#
# usage: bench/gpu-check.sh   (after npm ci; needs nvidia-smi and a Vulkan ICD)
#
# Dawn reaches the GPU through Vulkan, so the machine needs the Vulkan loader
# (libvulkan1) and NVIDIA's Vulkan driver. In a container the NVIDIA runtime
# mounts that driver only when NVIDIA_DRIVER_CAPABILITIES includes
# "graphics" (for example compute,utility,graphics). Without it Dawn finds
# only lavapipe, if installed, and the timing step below stops.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null; then
  echo "gpu-check: nvidia-smi not found; this check needs an NVIDIA GPU and its driver" >&2
  exit 1
fi
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
echo "GPU: $gpu"

npm run build
npx vitest run test/correctness.test.ts test/real-cases.test.ts test/webgpu.test.ts

# --require-hardware stops here when Dawn picked a CPU adapter instead of the GPU.
node bench/webgpu.mjs --users 32768 --contents 32768 --dim 256 --k 10 \
  --block-users 4096 --runs 3 --require-hardware | sed "s|TFLOP/s effective|TFLOP/s effective on $gpu|"

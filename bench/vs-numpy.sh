#!/usr/bin/env bash
# Times the whole `attnscore score` command (one thread, output written to a
# file) against the same job in numpy with its BLAS on every core.
#
# usage: bench/vs-numpy.sh [USERS CONTENTS DIM]   (default 4096 16384 256)
# Needs python3 with numpy. Data goes to /tmp/attnscore-bench-U-C-D.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-4096} contents=${2:-16384} dim=${3:-256}
data=/tmp/attnscore-bench-$users-$contents-$dim
python3 bench/peers/synth.py "$data" "$users" "$contents" "$dim" 7

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, node $(node --version), $(python3 -c 'import numpy; print("numpy", numpy.__version__)')"
echo "job: U=$users C=$contents D=$dim k=10 alpha=1 beta=1 gamma=0, top-k + CX + loyalty"

started=$(date +%s.%N)
node bin/attnscore.js score --users "$data/users.npy" --contents "$data/contents.npy" \
  --k 10 --out "$data/scores.jsonl" --no-progress
ended=$(date +%s.%N)
echo "attnscore (whole command, 1 thread): $(echo "$ended - $started" | bc) s"

# OpenBLAS picks a slower kernel when these are set for old-CPU safety; unset them for numpy alone.
started=$(date +%s.%N)
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/peers/numpy_job.py \
  "$data/users.npy" "$data/contents.npy" 10 1 1 0
ended=$(date +%s.%N)
echo "numpy (whole script, all cores): $(echo "$ended - $started" | bc) s"

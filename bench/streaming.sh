#!/usr/bin/env bash
# Peak memory of `attnscore score` as the users file grows: users are
# streamed in blocks, so RSS should stay flat. Seeded standard-normal float32
# data, 2000 contents x 128 dims, k = 10, one thread, JSONL output.
#
# usage: bench/streaming.sh [USERS...]   (default 4000 400000 800000)
# Needs python3 with numpy and /usr/bin/time. Data goes to /tmp/attnscore-streaming
# (the largest users file is 400 MB) and is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
data=/tmp/attnscore-streaming
mkdir -p "$data"
trap 'rm -rf "$data"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(4000 400000 800000)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, node $(node --version)"
python3 -c "
import numpy as np
np.save('$data/contents.npy', np.random.default_rng(2).standard_normal((2000, 128), dtype=np.float32))"
for users in "${sizes[@]}"; do
  python3 -c "
import numpy as np
np.save('$data/users.npy', np.random.default_rng(1).standard_normal(($users, 128), dtype=np.float32))"
  bytes=$(stat -c %s "$data/users.npy")
  /usr/bin/time -f "users $users ($bytes bytes): %e s, peak RSS %M KB" \
    node bin/attnscore.js score --users "$data/users.npy" --contents "$data/contents.npy" \
    --out "$data/scores.jsonl" --threads 1 --no-progress --quiet
done

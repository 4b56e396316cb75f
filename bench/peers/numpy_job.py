"""The scoring job as a data team writes it with numpy and its BLAS: a peer
to time attnscore against.

usage: numpy_job.py USERS.npy CONTENTS.npy K ALPHA BETA GAMMA [WEIGHTS.npy]

Normalises both sides (zero rows stay zero) and multiplies users by contents
in blocks of 2048 users, so the U x C matrix never exists whole. Picks the top
k with argpartition plus a stable sort (ties by lower row), sums
w * exp(alpha * a) in float64 and applies the loyalty sigmoid. Prints one
JSON line: seconds spent after loading, pairs, effective GFLOP/s and a few
values to compare with attnscore's output.
"""
import json
import sys
import time

import numpy as np

BLOCK = 2048


def main():
    users = np.load(sys.argv[1])
    contents = np.load(sys.argv[2])
    k = int(sys.argv[3])
    alpha, beta, gamma = map(float, sys.argv[4:7])
    weights = np.load(sys.argv[7]) if len(sys.argv) > 7 else np.ones(len(contents), np.float32)
    weights = weights.astype(np.float64)

    started = time.perf_counter()
    user_norms = np.linalg.norm(users, axis=1, keepdims=True)
    content_norms = np.linalg.norm(contents, axis=1, keepdims=True)
    user_norms[user_norms == 0] = 1
    content_norms[content_norms == 0] = 1
    unit_users = users / user_norms
    unit_contents_t = np.ascontiguousarray((contents / content_norms).T)
    kk = min(k, len(contents))
    top = np.empty((len(users), kk), np.int64)
    cx = np.empty(len(users))
    for start in range(0, len(users), BLOCK):
        sim = unit_users[start:start + BLOCK] @ unit_contents_t
        if kk < sim.shape[1]:
            candidates = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        else:
            candidates = np.tile(np.arange(sim.shape[1]), (len(sim), 1))
        # Sort candidates by row first so the stable sort on score breaks ties by lower row.
        candidates = np.sort(candidates, axis=1)
        scores = np.take_along_axis(sim, candidates, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")
        top[start:start + BLOCK] = np.take_along_axis(candidates, order, axis=1)
        cx[start:start + BLOCK] = np.exp(alpha * sim) @ weights
    loyalty = 1 / (1 + np.exp(-(beta * cx + gamma)))
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds,
        "pairs": len(users) * len(contents),
        "gflops": 2 * len(users) * len(contents) * users.shape[1] / seconds / 1e9,
        "cx0": float(cx[0]),
        "loyalty0": float(loyalty[0]),
        "top0": top[0].tolist()[:3],
    }))


main()

"""The scoring job as a data team writes it with numpy and its BLAS: a peer
to time attnscore against.

usage: numpy_job.py USERS.npy CONTENTS.npy K ALPHA BETA GAMMA [WEIGHTS.npy]
       numpy_job.py --peer JOB.json RUNS USERS SAMPLE_ROWS

Normalises both sides (zero rows stay zero) and multiplies users by contents
in blocks of 2048 users, so the U x C matrix never exists whole. Picks the top
k with argpartition plus a stable sort (ties by lower row), sums
w * exp(alpha * a) in float64 and applies the loyalty sigmoid.

The first form prints one JSON line: seconds spent after loading, pairs,
effective GFLOP/s and a few values to compare with attnscore's output. The
second form is the numpy peer of bench/peers.mjs. It reads the job file that
script writes and runs the job once to warm up, then RUNS more times on the
first USERS users. It prints the seconds of each run, peak RSS and the results
of the users in SAMPLE_ROWS (comma-separated), as bench/peers/peer.mjs does.
"""
import json
import resource
import sys
import time

import numpy as np

BLOCK = 2048


def score_job(users, contents, weights, k, alpha, beta, gamma):
    """Returns top-k content rows (U x min(k, C), best first), CX and loyalty."""
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
    return top, cx, loyalty


def blas_description():
    """Names the BLAS numpy was built with, from numpy's build configuration."""
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy has no mode="dicts"; the name is only informative
        return "unknown BLAS"


def run_peer(job_path, runs, user_limit, sample_arg):
    with open(job_path, encoding="utf8") as file:
        job = json.load(file)
    started = time.perf_counter()
    users = np.load(job["usersPath"])
    contents = np.load(job["contentsPath"])
    weights = np.load(job["weightsPath"]) if job.get("weightsPath") else np.ones(len(contents), np.float32)
    weights = weights.astype(np.float64)
    load_seconds = time.perf_counter() - started
    if user_limit > 0:
        users = users[:user_limit]
    params = (job["k"], job["alpha"], job["beta"], job["gamma"])
    score_job(users, contents, weights, *params)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        top, cx, loyalty = score_job(users, contents, weights, *params)
        seconds.append(time.perf_counter() - started)
    rows = [int(row) for row in sample_arg.split(",") if row and int(row) < len(users)]
    print(json.dumps({
        "peer": "numpy",
        "version": f"numpy {np.__version__}",
        "notes": [f"{blas_description()}, threads as the BLAS chooses"],
        "users": len(users),
        "loadSeconds": load_seconds,
        "seconds": seconds,
        "maxRssKB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "sample": {
            "rows": rows,
            "top": [top[row].tolist() for row in rows],
            "cx": [float(cx[row]) for row in rows],
            "loyalty": [float(loyalty[row]) for row in rows],
        },
    }))


def main():
    if sys.argv[1] == "--peer":
        run_peer(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else "")
        return
    users = np.load(sys.argv[1])
    contents = np.load(sys.argv[2])
    k = int(sys.argv[3])
    alpha, beta, gamma = map(float, sys.argv[4:7])
    weights = np.load(sys.argv[7]) if len(sys.argv) > 7 else np.ones(len(contents), np.float32)
    weights = weights.astype(np.float64)

    started = time.perf_counter()
    top, cx, loyalty = score_job(users, contents, weights, k, alpha, beta, gamma)
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

"""Cut the bundled sample out of a Fashion-MNIST scoring case and compute its
expected results independently, in float64 with numpy.

usage: make_sample.py CASE_DIR SAMPLE_DIR FIXTURE_DIR USERS CONTENTS K

CASE_DIR contains users.npy, contents.npy, content_weights.npy, user_ids.txt,
content_ids.txt and params.json (alpha, beta, gamma). The first USERS users
and CONTENTS contents are kept. SAMPLE_DIR receives the inputs; FIXTURE_DIR
receives expected_topk_index.npy (ties by lower row), expected_topk_score.npy,
expected_next_score.npy (the (k+1)-th best cosine), expected_cx.npy and
expected_loyalty.npy, plus params.json.
"""
import json
import os
import sys

import numpy as np


def main():
    case, sample, fixture = sys.argv[1:4]
    n_users, n_contents, k = map(int, sys.argv[4:7])
    params = json.load(open(f"{case}/params.json"))
    alpha, beta, gamma = params["alpha"], params["beta"], params["gamma"]

    users = np.load(f"{case}/users.npy")[:n_users]
    contents = np.load(f"{case}/contents.npy")[:n_contents]
    weights = np.load(f"{case}/content_weights.npy")[:n_contents]
    user_ids = open(f"{case}/user_ids.txt").read().splitlines()[:n_users]
    content_ids = open(f"{case}/content_ids.txt").read().splitlines()[:n_contents]

    os.makedirs(sample, exist_ok=True)
    os.makedirs(fixture, exist_ok=True)
    np.save(f"{sample}/users.npy", users)
    np.save(f"{sample}/contents.npy", contents)
    np.save(f"{sample}/content_weights.npy", weights)
    with open(f"{sample}/user_ids.txt", "w") as f:
        f.write("".join(f"{i}\n" for i in user_ids))
    with open(f"{sample}/content_ids.txt", "w") as f:
        f.write("".join(f"{i}\n" for i in content_ids))

    u64, c64, w64 = users.astype(np.float64), contents.astype(np.float64), weights.astype(np.float64)
    un = np.linalg.norm(u64, axis=1)
    cn = np.linalg.norm(c64, axis=1)
    un[un == 0] = 1.0  # a zero vector stays zero, so its cosine is 0
    cn[cn == 0] = 1.0
    sim = (u64 / un[:, None]) @ (c64 / cn[:, None]).T
    cx = (w64[None, :] * np.exp(alpha * sim)).sum(axis=1)
    loyalty = 1.0 / (1.0 + np.exp(-(beta * cx + gamma)))
    rows = np.broadcast_to(np.arange(sim.shape[1]), sim.shape)
    order = np.lexsort((rows, -sim), axis=1)
    top = order[:, :k]
    np.save(f"{fixture}/expected_topk_index.npy", top.astype(np.int32))
    np.save(f"{fixture}/expected_topk_score.npy", np.take_along_axis(sim, top, axis=1))
    np.save(f"{fixture}/expected_next_score.npy", np.take_along_axis(sim, order[:, k:k + 1], axis=1)[:, 0])
    np.save(f"{fixture}/expected_cx.npy", cx)
    np.save(f"{fixture}/expected_loyalty.npy", loyalty)
    with open(f"{fixture}/params.json", "w") as f:
        json.dump(dict(users=n_users, contents=n_contents, dim=int(users.shape[1]),
                       alpha=alpha, beta=beta, gamma=gamma, k=k), f, indent=2)
        f.write("\n")


main()

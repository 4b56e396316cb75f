"""Write seeded random users.npy and contents.npy (standard normal float32).

usage: synth.py DIR USERS CONTENTS DIM SEED   (existing files are kept)
"""
import os
import sys

import numpy as np

out, users, contents, dim, seed = sys.argv[1], *map(int, sys.argv[2:6])
os.makedirs(out, exist_ok=True)
if not os.path.exists(f"{out}/users.npy"):
    rng = np.random.default_rng(seed)
    np.save(f"{out}/users.npy", rng.standard_normal((users, dim), dtype=np.float32))
    np.save(f"{out}/contents.npy", rng.standard_normal((contents, dim), dtype=np.float32))

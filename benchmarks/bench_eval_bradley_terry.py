"""Bradley–Terry with 1,000 bootstrap rounds on 1,000,000 synthetic votes over 30 models.

Target: <= 5 s on the 2-core machine (the bootstrap reweights unique outcome rows, so the cost
does not grow with the number of votes once they are tallied).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.human.ratings import Outcome, bradley_terry


def main(n_votes: int = 1_000_000, n_models: int = 30, n_boot: int = 1000,
         target: float = 5.0) -> None:
    rng = np.random.default_rng(0)
    models = [f"model-{k:02d}" for k in range(n_models)]
    truth = {m: 1000 + 300 * rng.standard_normal() for m in models}
    truth["model-00"] = 1000.0
    i = rng.integers(0, n_models, n_votes)
    j = (i + rng.integers(1, n_models, n_votes)) % n_models
    t = np.array([truth[m] for m in models])
    p = 1 / (1 + 10 ** (-(t[i] - t[j]) / 400))
    res_code = np.where(rng.random(n_votes) < p, 0, 1)
    labels = ("A", "B")
    outcomes = [
        Outcome(models[a], models[b], labels[c])
        for a, b, c in zip(i.tolist(), j.tolist(), res_code.tolist(), strict=True)
    ]
    start = time.perf_counter()
    res = bradley_terry(outcomes, reference="model-00", n_boot=n_boot, seed=0)
    elapsed = time.perf_counter() - start
    err = max(abs(r.rating - truth[m]) for m, r in res.ratings.items())
    width = np.mean([r.hi - r.lo for r in res.ratings.values()])
    print(f"votes={n_votes:,} models={n_models} bootstrap={n_boot}")
    print(f"bradley_terry: {elapsed:.2f} s (target <= {target:g} s) -> "
          f"{'OK' if elapsed <= target else 'OVER'}")  # fmt: skip
    print(f"max |rating - truth| = {err:.1f} Elo, mean 95% CI width = {width:.1f} Elo")
    print(f"summary: Bradley–Terry + {n_boot:,} bootstrap rounds on {n_votes:,} votes, "
          f"{n_models} models: {elapsed:.2f} s, max error {err:.1f} Elo (target ≤ {target:g} s: "
          f"{'OK' if elapsed <= target else 'OVER'})")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="a few seconds: 100,000 votes, 200 rounds (target scaled: 1 s)")
    if ap.parse_args().quick:
        main(n_votes=100_000, n_boot=200, target=1.0)
    else:
        main()

"""What one tick's scoring costs: ``Model.score`` on the shipped model, native and NumPy.

The agent scores once a second, so its caches are cold; three regimes, each path measured
alternately on the same rows (median and p90, µs):

* warm: calls back to back;
* evicted: a 64 MiB buffer is rewritten before each call (caches flushed, deterministically);
* slept: ``time.sleep(--sleep)`` before each call while a child process rewrites a 64 MiB
  buffer without pause (the agent's case on a busy machine; slow: --slept N calls per path).

    python bench/score.py
    python bench/score.py --slept 20 --sleep 1
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event

import numpy as np
from mltune.drivers.readahead import CANDIDATES, MODEL_FEATURES
from mltune.forest import NATIVE, Forest
from mltune.model import Model, shipped_paths

EVICT = 64 << 20


def thrash(stop: Callable[[], bool]) -> None:
    buf = np.zeros(EVICT, dtype=np.uint8)
    while not stop():
        buf += 1


def _thrasher(event: Event) -> None:
    thrash(event.is_set)


def rows(model: Model, n: int) -> list[dict[str, float]]:
    """Observations drawn around the model's own thresholds, some features missing."""
    rng = random.Random(3)
    cuts = model.forest._thresholds if model.forest else [[0.0]] * len(MODEL_FEATURES)
    return [{f: rng.choice(cuts[i] or [0.0]) + rng.uniform(-0.5, 0.5)
             for i, f in enumerate(MODEL_FEATURES) if rng.random() < 0.9} for _ in range(n)]


def measure(models: dict[str, Model], obs: list[dict[str, float]],
            before: Callable[[], None]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in models}
    for features in obs:
        for name, model in models.items():
            before()
            t0 = time.perf_counter()
            model.score(features, CANDIDATES)
            out[name].append((time.perf_counter() - t0) * 1e6)
    return out


def report(regime: str, times: dict[str, list[float]]) -> None:
    for name, vals in times.items():
        p90 = sorted(vals)[int(0.9 * (len(vals) - 1))]
        print(f"  {regime:<8} {name:<7} median {statistics.median(vals):8.1f}  p90 {p90:8.1f}"
              f"  (n={len(vals)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=300, help="calls per path, warm and evicted")
    ap.add_argument("--slept", type=int, default=0, help="calls per path after a sleep")
    ap.add_argument("--sleep", type=float, default=1.0)
    args = ap.parse_args()
    models = {"numpy": Model.load(*shipped_paths("readahead"), "readahead", MODEL_FEATURES)}
    if NATIVE is None:
        print("mltune._fastforest is not built: NumPy path only")
    else:
        native = models.pop("numpy")
        text = shipped_paths("readahead")[0].read_text()
        numpy = Model(native.booster, native.meta, Forest(text, native=False))
        models = {"native": native, "numpy": numpy}
    obs = rows(models["numpy"], args.calls)
    print("Model.score, µs per call (10 candidates)")
    report("warm", measure(models, obs, lambda: None))
    buf = np.zeros(EVICT, dtype=np.uint8)

    def evict() -> None:
        buf.fill(len(buf) & 0xFF)

    report("evicted", measure(models, obs, evict))
    if args.slept:
        stop = multiprocessing.Event()
        child = multiprocessing.Process(target=_thrasher, args=(stop,), daemon=True)
        child.start()
        try:
            report("slept", measure(models, obs[:args.slept], lambda: time.sleep(args.sleep)))
        finally:
            stop.set()
            child.join(5)
            if child.is_alive():
                child.terminate()
                child.join()
    print("  (scores checked equal: "
          f"{all(_same(models, f) for f in obs[:50])})")


def _same(models: dict[str, Model], features: dict[str, float]) -> bool:
    scores = [list(m.score(features, CANDIDATES).values()) for m in models.values()]
    return all(np.array(s).tobytes() == np.array(scores[0]).tobytes() for s in scores) \
        and all(not math.isnan(x) for x in scores[0])


if __name__ == "__main__":
    main()

"""`mltune collect`: measure (features, setting, throughput) on a real device.

For every access pattern × value, the knob is set, caches are dropped, fio runs inside the
lab's memory cgroup, and the driver observes the device once a second exactly as the agent
would. Rows are appended and flushed per run, so an interrupted collection keeps what it
measured.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .driver import Driver

FORMAT = "mltune-dataset"
VERSION = 1


def _clean(features: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if math.isnan(v) else v) for k, v in features.items()}


def collect(lab: Any, driver: Driver, patterns: Sequence[str], values: Sequence[int],
            seconds: float, out: Path, repeats: int = 1,
            progress: Callable[[str], None] = lambda _: None) -> int:
    """Run the grid and append rows to ``out``; returns the number of observation rows.

    Appending to a dataset continues its pass numbers: training takes the median throughput
    of each (pattern, value) over passes, and a second pass numbered 0 again would replace
    the first one's figures instead of adding to them."""
    new = not out.exists()
    first = 0 if new else last_rep(out) + 1
    target = driver.discover()[0]
    rows = 0
    with open(out, "a", encoding="utf-8") as f:
        if new:
            f.write(json.dumps({"format": FORMAT, "version": VERSION, "driver": driver.name,
                                "features": list(driver.features)}) + "\n")
        for rep in range(first, first + repeats):
            for pattern in patterns:
                for value in values:
                    rows += _one_run(lab, driver, target, pattern, value, seconds, rep, f)
                    progress(f"{pattern} @ {value}")
    return rows


def last_rep(path: Path) -> int:
    """The highest pass number in a dataset (-1 if it has no rows yet). A line cut short by
    an interrupted collection is skipped, as training skips it."""
    last = -1
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rep = json.loads(line).get("rep")
            except (ValueError, AttributeError):
                continue
            if isinstance(rep, int):
                last = max(last, rep)
    return last


def _one_run(lab: Any, driver: Driver, target: Any, pattern: str, value: int,
             seconds: float, rep: int, f: Any) -> int:
    lab.set_read_ahead_kb(value)
    lab.drop_caches()
    run = lab.start(pattern, seconds)
    observations = []
    try:
        time.sleep(0.5)
        driver.observe([target])  # baseline for deltas: discarded
        deadline = time.monotonic() + seconds - 1.0
        while time.monotonic() + 1.0 <= deadline:
            time.sleep(1.0)
            observations.append(driver.observe([target])[target.name])
    finally:
        result = run.wait()
    for o in observations:
        f.write(json.dumps({"pattern": pattern, "rep": rep, "value": value,
                            "mbps": result.mbps, "source": o.source,
                            "features": _clean(dict(o.features))}) + "\n")
    f.flush()
    return len(observations)

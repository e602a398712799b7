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
from .errors import MltuneError
from .train import read_dataset

FORMAT = "mltune-dataset"
VERSION = 1


def _clean(features: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if math.isnan(v) else v) for k, v in features.items()}


def collect(lab: Any, driver: Driver, patterns: Sequence[str], values: Sequence[int],
            seconds: float, out: Path, repeats: int = 1,
            progress: Callable[[str], None] = lambda _: None,
            first_rep: int | None = None) -> int:
    """Run the grid and append rows to ``out``; returns the number of observation rows.
    ``first_rep``: the first pass's number, :func:`next_rep` (computed here if not given)."""
    first = next_rep(out, driver.name) if first_rep is None else first_rep
    new = not out.exists()
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


def next_rep(out: Path, driver: str) -> int:
    """The number of the first pass a collection into ``out`` adds: 0 for a new file, else
    one after its last. Training takes the median of each (pattern, value) over passes, and
    a second pass numbered 0 again would replace the first one's figures.

    An existing file must be a dataset of ``driver`` that training can read: after a line
    an interrupted collection cut short, the next row would be glued to it and the file
    spoilt for good. Raises MltuneError naming the file (checked before any lab is built)."""
    if not out.exists():
        return 0
    header, rows = read_dataset(out)
    if header.get("driver") != driver:
        raise MltuneError(f"dataset {out}: of driver {header.get('driver')!r}, not {driver!r}")
    return max((r["rep"] for r in rows if isinstance(r.get("rep"), int)), default=-1) + 1


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

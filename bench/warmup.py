"""Do mmap random reads stay slow after readahead is made right late? (run as root)

In the 10 s mix mltune read mmap random reads at 4 from ~1.5 s into the phase to its end,
yet read 9-13 MB/s where static 4 read 25-26 (``-v21 --reclaim``, rounds 1 and 2). This
runs the phase alone, after a stream at the device default and an emptied memory cgroup, as
the benchmark does with ``--reclaim``, under schedules of ``read_ahead_kb``:

* ``4``: 4 from the start (static 4);
* ``late``: the stream's value, then 4 after ``--late`` seconds;
* ``steps``: mltune's usual path, 2560 -> 32 -> 16 -> 4 at 0.45, 1.0 and 1.55 s.

It prints fio's MB/s for the phase and the device's MB/s per second (at 4 a fault reads one
page, so the device's rate is the application's). If the late schedules read far less than
the time at the wrong values explains, the early readahead leaves something behind.

    python bench/warmup.py --repeat 2 --duration 10
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

from mltune.lab import Lab

SCHEDULES = ("4", "late", "steps")


def _sectors(device: str) -> int:
    return int(Path(f"/sys/block/{device}/stat").read_text().split()[2])


def _drive(lab: Lab, steps: list[tuple[float, int]], t0: float, stop: threading.Event,
           failed: list[BaseException]) -> None:
    try:
        for at, kb in steps:
            if stop.wait(max(0.0, t0 + at - time.monotonic())):
                return
            lab.set_read_ahead_kb(kb)
    except Exception as err:  # re-raised by one(): a schedule not run gives no figure
        failed.append(err)


def one(lab: Lab, schedule: str, duration: float, late: float, start_kb: int) -> \
        tuple[float, list[float]]:
    lab.set_read_ahead_kb(start_kb)
    lab.run("seq", duration)  # the phase before, at the device default
    lab.reclaim()
    steps = {"4": [], "late": [(late, 4)],
             "steps": [(0.45, 32), (1.0, 16), (1.55, 4)]}[schedule]
    lab.set_read_ahead_kb(4 if schedule == "4" else start_kb)
    stop = threading.Event()
    failed: list[BaseException] = []
    run = lab.start("mmap-rand", duration)
    t0 = time.monotonic()
    driver = threading.Thread(target=_drive, args=(lab, steps, t0, stop, failed))
    driver.start()
    rates, last = [], _sectors(lab.device)
    try:
        while run.running() and time.monotonic() - t0 < duration + 2:
            time.sleep(1.0)
            now = _sectors(lab.device)
            rates.append((now - last) * 512 / 1e6)
            last = now
        result = run.wait()
    finally:
        stop.set()
        driver.join()
    if failed:
        raise failed[0]
    return result.mbps, rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--late", type=float, default=1.5, help="seconds before 4, for 'late'")
    ap.add_argument("--start", type=int, default=2560,
                    help="read_ahead_kb of the stream before and of the late schedules' start")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp"))
    args = ap.parse_args()
    seen: dict[str, list[float]] = defaultdict(list)
    with Lab(args.workdir) as lab:
        start_kb = args.start
        for rnd in range(args.repeat):
            for schedule in SCHEDULES:
                mbps, rates = one(lab, schedule, args.duration, args.late, start_kb)
                seen[schedule].append(mbps)
                print(f"round {rnd + 1} {schedule:>5}: fio {mbps:5.1f} MB/s; device MB/s per "
                      f"second: {' '.join(f'{r:.0f}' for r in rates)}", flush=True)
    print("\nmedian fio MB/s:", ", ".join(f"{s} {statistics.median(v):.1f}"
                                         for s, v in seen.items()))


if __name__ == "__main__":
    main()

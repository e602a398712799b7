"""Do fast streams slow the mmap random reads that come after them? (run as root)

In the 6 s mix the last phase, mmap random reads at 4, read ~72 MB/s under static 4 and
52-57 under the oracle, at the same value for the two phases before it. What differs is
the streams earlier in the round: the oracle read them at 512-2560, static 4 at 4. This runs
that part of the round alone: mmap-seq and multi-seq at --stream (each value in turn), then
pread-rand and mmap-rand at 4, with or without dropping the caches right before mmap-rand.
If the streams' value mattered through what they leave in memory, mmap-rand reads less after
the faster streams, and not once the caches are dropped.

    python bench/history.py --repeat 2 --duration 6
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from mltune.lab import Lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2, help="rounds of every combination")
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per phase")
    ap.add_argument("--stream", default="2048,4", help="read_ahead_kb of the streams")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp"))
    args = ap.parse_args()
    streams = [int(v) for v in args.stream.split(",") if v.isdigit()]
    if not streams or len(streams) != len(args.stream.split(",")) or args.repeat < 1 \
            or args.duration <= 0:
        print("error: --stream needs numbers (KiB), --repeat >= 1, --duration > 0",
              file=sys.stderr)
        raise SystemExit(2)
    seen: dict[tuple[int, bool], list[float]] = defaultdict(list)
    with Lab(args.workdir) as lab:
        for rnd in range(args.repeat):
            # Alternate the order from round to round: a drift of the host hits all alike.
            combos = [(v, d) for v in streams for d in (False, True)]
            for value, drop in combos if rnd % 2 == 0 else combos[::-1]:
                lab.drop_caches()
                lab.set_read_ahead_kb(value)
                lab.run("mmap-seq", args.duration)
                lab.run("multi-seq", args.duration)
                lab.set_read_ahead_kb(4)
                lab.run("pread-rand", args.duration)
                if drop:
                    lab.drop_caches()
                got = lab.run("mmap-rand", args.duration).mbps
                seen[(value, drop)].append(got)
                print(f"round {rnd + 1}: streams at {value}"
                      f"{', caches dropped' if drop else ''}: mmap-rand at 4 read {got:.1f} MB/s",
                      flush=True)
    print("\nmedian MB/s of mmap random reads at 4 after streams at …")
    for (value, drop), runs in sorted(seen.items()):
        print(f"  {value:>5}{' + caches dropped' if drop else '                 '}: "
              f"{statistics.median(runs):.1f} ({', '.join(f'{r:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()

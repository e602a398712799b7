"""Does a phase of mmap random reads slow the streams that follow it? (run as root)

In the mixes, streams after mmap random reads ran slower under the adaptive regimes (which
read those at 4, ~60 MB/s) than under static 2048 (which read them at ~2 MB/s). This runs
the pair alone, in one lab: mmap random reads at --before (4, then 2048), then a sequential
stream and four streams at 2048, optionally emptying the memory cgroup in between
(``memory.force_empty`` on cgroup v1, ``memory.reclaim`` on v2). The caches are dropped before
each pair. If the first phase's value mattered, the streams after 4 would read less.

    python bench/carryover.py --repeat 2 --duration 10
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from mltune.lab import Lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=2, help="rounds of the four pairs")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--before", default="4,2048", help="read_ahead_kb of the mmap phase")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp"))
    args = ap.parse_args()
    befores = [int(v) for v in args.before.split(",")]
    seen: dict[tuple[int, bool], list[tuple[float, float]]] = defaultdict(list)
    with Lab(args.workdir) as lab:
        for rnd in range(args.repeat):
            for before in befores:
                for empty in (False, True):
                    lab.drop_caches()
                    lab.set_read_ahead_kb(before)
                    rand = lab.run("mmap-rand", args.duration)
                    took = lab.reclaim() if empty else 0.0
                    lab.set_read_ahead_kb(2048)
                    seq = lab.run("seq", args.duration)
                    multi = lab.run("multi-seq", args.duration)
                    seen[(before, empty)].append((seq.mbps, multi.mbps))
                    print(f"round {rnd + 1}: mmap-rand at {before} read {rand.mbps:.1f} MB/s"
                          f"{f', cgroup emptied ({took:.2f} s)' if empty else ''}; then at "
                          f"2048 seq {seq.mbps:.0f} MB/s, multi-seq {multi.mbps:.0f} MB/s",
                          flush=True)
    print("\nmedian MB/s of the streams after mmap random reads at …")
    for (before, empty), runs in sorted(seen.items()):
        seq = statistics.median(r[0] for r in runs)
        multi = statistics.median(r[1] for r in runs)
        print(f"  {before:>5}{' + emptied' if empty else '          '}: seq {seq:.0f}, "
              f"multi-seq {multi:.0f} ({len(runs)} runs)")


if __name__ == "__main__":
    main()

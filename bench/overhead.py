"""What the agent costs the workload it watches (run as root).

The mixes show mltune reading a few per cent below the static regime at the same value on
some phases it never changed (four streams at 2048: 0.91-0.98 of static 2048 in most rounds).
This measures that cost alone: the same fio phase at the same ``read_ahead_kb``, alternately
without the agent and with it running in ``--dry-run`` (it observes, samples the trace and
scores every tick, as when it tunes, but writes nothing, so the value stays put). Runs are
paired A/B, B/A, ... so a slow drift of the host hits both sides alike; the ratio of each pair
is printed, then per pattern their geometric mean and range.

    python bench/overhead.py --patterns multi-seq,seq,mmap-rand --pairs 4 --duration 10
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mltune.lab import PATTERNS, Lab

WARMUP_S = 3.0  # imports and model load, before the workload starts


def run_phase(lab: Lab, pattern: str, seconds: float, with_agent: bool,
              interval: float) -> float:
    """MB/s of one fio phase, with or without a dry-run agent on the lab's device."""
    lab.drop_caches()
    if not with_agent:
        return lab.run(pattern, seconds).mbps
    with tempfile.TemporaryDirectory(prefix="mltune-overhead-") as tmp:
        state = Path(tmp)
        # Its log goes to a file, not a pipe nobody reads while fio runs.
        with (state / "agent.log").open("wb") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "mltune", "run", "--driver", "readahead", "--device",
                 lab.device, "--interval", str(interval), "--dry-run", "--state-dir",
                 str(state)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            time.sleep(WARMUP_S)
            mbps = lab.run(pattern, seconds).mbps
            # An agent that died before or during the run leaves a figure measured without it.
            if agent.poll() is not None:
                tail = (state / "agent.log").read_text(errors="replace")[-500:]
                raise SystemExit(f"the agent exited (code {agent.returncode}): {tail}")
        finally:
            agent.terminate()
            agent.wait(30)
    return mbps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patterns", default="multi-seq,seq,mmap-rand",
                    help="fio patterns, comma-separated (default: %(default)s)")
    ap.add_argument("--values", default="2048,2048,4",
                    help="read_ahead_kb per pattern, same order (default: %(default)s)")
    ap.add_argument("--pairs", type=int, default=4, help="A/B pairs per pattern")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--interval", type=float, default=1.0, help="the agent's --interval")
    ap.add_argument("--workdir", type=Path, default=Path("/var/tmp"))
    args = ap.parse_args()
    patterns = args.patterns.split(",")
    values = [int(v) for v in args.values.split(",") if v.isdigit()]
    bad = [p for p in patterns if p not in PATTERNS]
    if bad or len(values) != len(patterns) or args.pairs < 1 or args.duration <= 0:
        print(f"error: unknown pattern {bad[0]!r} (choose from {', '.join(PATTERNS)})" if bad
              else "error: --values needs one number (KiB) per pattern, --pairs >= 1, "
              "--duration > 0", file=sys.stderr)
        raise SystemExit(2)
    with Lab(args.workdir) as lab:
        results: dict[str, list[float]] = {}
        for pattern, value in zip(patterns, values, strict=True):
            lab.set_read_ahead_kb(value)
            for i in range(args.pairs):
                order = (False, True) if i % 2 == 0 else (True, False)
                got = {w: run_phase(lab, pattern, args.duration, w, args.interval)
                       for w in order}
                ratio = got[True] / got[False]
                results.setdefault(pattern, []).append(ratio)
                print(f"{pattern} at {value}: without {got[False]:.1f} MB/s, with the agent "
                      f"{got[True]:.1f} MB/s: {ratio:.3f}", flush=True)
    print("\nwith the agent ÷ without, per pattern (geometric mean, range):")
    for pattern, ratios in results.items():
        g = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"  {pattern}: {g:.3f} ({min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} pairs)")


if __name__ == "__main__":
    main()

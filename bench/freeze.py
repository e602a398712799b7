"""Back-off from outside writes, measured: is a knob someone else sets frozen within one tick?

The agent tunes a loop device kept busy by direct reads (`min_gain: 0`, so it writes its
pick at once). Each round: wait until the agent has written, write 8 KiB to the knob from
outside (what an admin's `echo 8 > read_ahead_kb` does), then read the audit log: the first
decision the agent made after that write must say "frozen", and the knob must still read 8
two ticks later (never overwritten). `mltune resume` then hands the knob back, and the next
round starts when the agent has written again.

    python bench/freeze.py --rounds 100
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import direct_reads, knob, scratch_loop

OUTSIDE = "8"  # not a candidate: the agent never writes it itself
INTERVAL = 0.2
CONFIG = "drivers:\n  readahead:\n    policies:\n      min_gain: 0.0\n      cooldown_s: 0\n"


def decisions(audit: Path, dev: str, after: float) -> list[dict]:
    try:
        lines = audit.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        d = json.loads(line)
        if d.get("kind") == "decision" and d["target"] == dev and d["time"] > after:
            out.append(d)
    return out


def wait_for(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return False


def one_round(dev: str, state: Path, since: float) -> tuple[bool, bool, float | None]:
    """(frozen at the first tick after the write, value left alone, seconds to the freeze)."""
    audit = state / "audit.jsonl"
    if not wait_for(lambda: any(d["written"] for d in decisions(audit, dev, since)), 10):
        raise RuntimeError("the agent did not write within 10 s")
    time.sleep(random.uniform(0, INTERVAL))  # land the write at any point of a tick
    t_write = time.time()
    knob(dev).write_text(OUTSIDE)
    if not wait_for(lambda: decisions(audit, dev, t_write), 5):
        raise RuntimeError("no decision within 5 s of the outside write")
    first = decisions(audit, dev, t_write)[0]
    frozen = first["note"].startswith("frozen")
    wait_for(lambda: len(decisions(audit, dev, t_write)) >= 3, 5)
    left_alone = knob(dev).read_text().strip() == OUTSIDE
    subprocess.run([sys.executable, "-m", "mltune", "resume", dev, "--state-dir", str(state)],
                   check=True, capture_output=True)
    return frozen, left_alone, first["time"] - t_write if frozen else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    random.seed(args.seed)
    frozen = left = 0
    delays: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mltune-freeze-") as tmp, \
            scratch_loop(Path(tmp)) as dev, direct_reads(dev):
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        state = Path(tmp) / "state"
        agent = subprocess.Popen(
            [sys.executable, "-m", "mltune", "run", "--driver", "readahead", "--device", dev,
             "--interval", str(INTERVAL), "--state-dir", str(state), "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            since = 0.0
            for i in range(args.rounds):
                f, kept, delay = one_round(dev, state, since)
                since = time.time()
                frozen += f
                left += kept
                if delay is not None:
                    delays.append(delay)
                print(f"\rround {i + 1}/{args.rounds}: frozen at the next tick {frozen}, "
                      f"value left alone {left}", end="", file=sys.stderr)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
    print(file=sys.stderr)
    delays.sort()
    med = f"{delays[len(delays) // 2] * 1000:.0f} ms" if delays else "n/a"
    print(f"outside write: frozen at the first decision after it {frozen}/{args.rounds}, "
          f"value never overwritten {left}/{args.rounds}; write → freeze median {med} "
          f"(interval {INTERVAL} s)")
    return 0 if frozen == left == args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())

"""Crash safety, measured: kill -9 the agent at random moments, then restore.

Each round: the knob is at a value no model picks (8 KiB, not a candidate), the device is
kept busy by direct reads, the agent runs with `min_gain: 0` so it writes at its first tick,
gets SIGKILL after a random 0-3 s (before, during or after its writes), then
`mltune restore` runs and the knob must read 8 again. Odd rounds restore by restarting the
agent instead (crash recovery at start), then SIGTERM.

    python bench/crash_restore.py --rounds 100
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import direct_reads, knob, scratch_loop

ORIGINAL = "8"
CONFIG = "drivers:\n  readahead:\n    policies:\n      min_gain: 0.0\n      cooldown_s: 0\n"


def agent(dev: str, state: Path, config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "mltune", "run", "--driver", "readahead",
                             "--device", dev, "--interval", "0.2", "--state-dir", str(state),
                             "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_round(dev: str, state: Path, config: Path, rng: random.Random, by_restart: bool
              ) -> tuple[bool, bool]:
    """(restored, the agent had changed the knob before it died)."""
    knob(dev).write_text(ORIGINAL)
    with direct_reads(dev):
        proc = agent(dev, state, config)
        time.sleep(rng.uniform(0.0, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    changed = knob(dev).read_text().strip() != ORIGINAL
    if by_restart:
        again = agent(dev, state, config)
        time.sleep(1.0)  # recovery happens before the first tick
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=30)
    else:
        subprocess.run([sys.executable, "-m", "mltune", "restore", "--state-dir", str(state)],
                       check=True, capture_output=True)
    return knob(dev).read_text().strip() == ORIGINAL, changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="mltune-crash-") as tmp, \
            scratch_loop(Path(tmp)) as dev:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        ok = changed = 0
        for i in range(args.rounds):
            state = Path(tmp) / f"state{i}"
            restored, was_changed = one_round(dev, state, config, rng, by_restart=i % 2 == 1)
            ok += restored
            changed += was_changed
            print(f"\rround {i + 1}/{args.rounds}: restored {ok}", end="", file=sys.stderr)
    print(file=sys.stderr)
    print(f"kill -9 at random moments: original restored {ok}/{args.rounds} "
          f"(agent had changed the knob before dying in {changed} rounds)")
    return 0 if ok == args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())

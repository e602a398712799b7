"""What the sampler's events cost a traced reader between windows (run as root).

A loop device with ext4 holds a 256 MiB file, read once so that it is cached; then ``dd
bs=4k`` (a C loop of read() calls) reads it through, in interleaved rounds, with:

* ``none``: no sampler;
* ``perf``: mltune's sampler on perf events, open with the events disabled (as between
  windows);
* ``tracefs``: the fallback, a tracefs instance with the events enabled and filtered and
  ``tracing_on`` 0 (as between windows).

It prints ns per read() (min and median of the rounds) and the ratio to ``none``. Cached
reads put the per-call cost in the open: a reader at disk speed pays the same per call.

    python bench/trace_cost.py --rounds 8
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from mltune.sysfs import Root
from mltune.tracing import TraceSampler

MIB = 256


def dd_ns_per_read(path: Path) -> float:
    out = subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=4k"], check=True,
                         capture_output=True, text=True).stderr
    secs = float(re.search(r"copied, ([0-9.]+) s", out)[1])  # type: ignore[index]
    return secs * 1e9 / (MIB * 256)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("trace_cost: needs root (loop device, mount, tracepoints)")
    tmp = Path(tempfile.mkdtemp(prefix="mltune-trace-cost-", dir="/var/tmp"))
    img, mnt = tmp / "disk.img", tmp / "mnt"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate((MIB + 64) << 20)
    dev = subprocess.run(["losetup", "-f", "--show", str(img)], check=True,
                         capture_output=True, text=True).stdout.strip()
    mounted = False
    try:
        subprocess.run(["mkfs.ext4", "-q", dev], check=True)
        subprocess.run(["mount", dev, str(mnt)], check=True)
        mounted = True
        data = mnt / "data"
        subprocess.run(["dd", "if=/dev/zero", f"of={data}", "bs=1M", f"count={MIB}",
                        "status=none"], check=True)
        data.read_bytes()  # cached: every later read() is the call and its tracepoints
        st = data.stat()
        nums = [(os.major(st.st_dev), os.minor(st.st_dev))]
        ns: dict[str, list[float]] = {"none": [], "perf": [], "tracefs": []}
        for _ in range(args.rounds):
            for how in ns:
                sampler = None
                if how != "none":
                    sampler = TraceSampler(Root("/"), {"data": nums}, source=how)
                    sampler.open()
                    sampler.sample()  # one window, as a tick does; then off
                try:
                    ns[how].append(dd_ns_per_read(data))
                finally:
                    if sampler is not None:
                        sampler.close()
        base = min(ns["none"])
        print(f"ns per 4 KiB read() of cached data, {args.rounds} interleaved rounds")
        for how, vals in ns.items():
            print(f"  {how:8s} min {min(vals):6.0f}  median {statistics.median(vals):6.0f}"
                  f"  min ratio to none {min(vals) / base:.2f}")
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], check=False)
        subprocess.run(["losetup", "-d", dev], check=False)
        img.unlink(missing_ok=True)
        mnt.rmdir()
        tmp.rmdir()


if __name__ == "__main__":
    main()

"""On the real kernel: the sampler's raw pages give the features the kernel's own text gives.

Each window is read twice: first the instance's ``trace`` file (text, not consuming), then
the sampler drains ``trace_pipe_raw`` as it does every tick. The text goes through the
reference parser the shipped model was trained with, capped as the old sampler capped it.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from mltune.ringbuf import decode
from mltune.sysfs import Root
from mltune.tracing import TEXT_LIMIT, TraceSampler, summarize

from tests.tracing import kernel, reference

pytestmark = pytest.mark.kernel

MISSING = [t for t in ("fio", "losetup", "mkfs.ext4") if shutil.which(t) is None]


@pytest.fixture()
def lab(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("needs root for loop devices, cgroups and tracefs")
    if MISSING:
        pytest.skip(f"missing tools: {', '.join(MISSING)} (apt-get install -y fio)")
    from mltune.lab import Lab

    with Lab(tmp_path / "lab", size_mib=512, files=16, mem_limit_mib=96) as lab:
        yield lab


@pytest.mark.parametrize("pattern,ra,window", [("seq", 128, 0.05), ("mmap-rand", 16, 0.2),
                                               ("multi-seq", 2048, 0.05)])
def test_raw_window_features_equal_the_kernel_text_through_the_reference(
        lab, pattern: str, ra: int, window: float) -> None:
    root = Root("/")
    dev = tuple(int(x) for x in Path(f"/sys/block/{lab.device}/dev").read_text().split(":"))
    sampler = TraceSampler(root, {lab.device: [dev]})
    sampler.open()
    inst = root.path(sampler.instance)
    lab.set_read_ahead_kb(ra)
    run = lab.start(pattern, 5)
    try:
        time.sleep(1.5)
        compared = 0
        for _ in range(3):
            sampler._drain()  # what the last window left
            sampler._switch(b"1")
            time.sleep(window)
            sampler._switch(b"0")
            text = "".join(line for line in (inst / "trace").read_text().splitlines(True)
                           if not line.startswith("#"))
            raw = summarize(decode(sampler._drain(), sampler._decoders, TEXT_LIMIT))
            want = reference.summarize(kernel.capped(text, TEXT_LIMIT))
            assert reference.equal(raw, want)
            compared += bool(want)
        assert compared, "fio's reads were not traced"
    finally:
        run.stop()
        sampler.close()
    assert not inst.exists()

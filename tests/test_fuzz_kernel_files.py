"""Property tests: whatever /proc, /sys and tracefs hold, mltune never shows a traceback and
never writes outside what it may write.

The fake kernel is the 6.18 VM capture in pyfakefs, with some of the files the readahead
driver, the journal and the tracefs sampler read replaced by hypothesis-generated contents:
garbage, truncated lines, extra or missing columns, huge, negative, NaN and inf numbers,
bytes that are not UTF-8, empty files, missing files, a directory where a file should be.
Each tick sees its own capture (disk counters advance between ticks, so targets are busy and
the model decides), and the value read back after a write to ``read_ahead_kb`` is fuzzed
too: the kernel normalises what it is given and could show anything.

What may be written: the ``queue/read_ahead_kb`` of the selected targets, files under the state
directory and mltune's own tracefs instance. Writes are caught twice: every call of the write
helpers (``Root.write``, ``Root.truncate``) is recorded, and the whole fake filesystem is
compared before and after each call into mltune, so a write that bypasses the helpers shows
up as well.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mltune.journal
import mltune.lab_cli
import mltune.loop
import mltune.policies.limits
import mltune.report_cli
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from mltune import config as configmod
from mltune.cli import _make_agent, app
from mltune.driver import Change, Target
from mltune.drivers.readahead import FEATURES, ReadaheadDriver
from mltune.errors import MltuneError
from mltune.model import Model
from mltune.sysfs import Root
from mltune.tracefs import EVENTS, INSTANCE_PREFIX, TRACEFS
from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from tests.conftest import FAKE_ROOT, LINUX_618

# Modules mltune imports lazily, imported here while their source files are still visible:
# under pyfakefs an import that reaches the filesystem fails.
_PRELOADED = (mltune.journal, mltune.lab_cli, mltune.loop, mltune.policies.limits,
              mltune.report_cli)
CONFIGS = Path(configmod.__file__).parent.parent / "configs"
PID = os.getpid()
INSTANCE = f"{TRACEFS}/instances/{INSTANCE_PREFIX}{PID}"
TRACE_PIPE = f"{INSTANCE}/trace_pipe"
RA_RANGE = (4, 4096)  # policies.range of the shipped configuration

# The capture, read once from the repository (small text files) so that strategies can
# mangle real contents: a mangled real file gets past the first parser checks far more often
# than random text does.
ORIGINAL: dict[str, bytes] = {
    **{str(p.relative_to(LINUX_618)): p.read_bytes() for p in sorted(LINUX_618.rglob("*"))
       if p.is_file() and p.relative_to(LINUX_618).parts[0] in ("proc", "sys")},
    TRACE_PIPE: (LINUX_618 / "trace" / "dd-then-mmap.txt").read_bytes(),
}
KERNEL_FILES = tuple(sorted(ORIGINAL))

# Lines worth aiming at: the ones the driver actually uses.
KEYWORDS = (b"loop0", b"vda", b"pgmajfault", b"pgpgin", b"workingset_refault_file",
            b"MemTotal", b"MemAvailable", b"some", b"full", b"mm_filemap", b"page_cache")

MISSING = None  # content sentinel: the file does not exist
DIRECTORY = b"\0dir"  # content sentinel: a directory stands where the file should be

ODD = ["", "0", "-1", "-0", "+7", " 12 ", "1.5", "1e400", "nan", "NaN", "inf", "-inf", "0x10",
       "1_000", "\x00", "\xff", "\u0663", "12abc", ":", "=", "7:0:1", "254:", ":0",
       "18446744073709551615", "18446744073709551616", "-9223372036854775809", "9" * 30]
NUMBERS = (st.integers(-(2**70), 2**70).map(str)
           | st.floats(allow_nan=True, allow_infinity=True).map(repr))
VALUES = st.sampled_from(ODD) | NUMBERS
# "key=value" fields as in /proc/pressure and trace lines, with a hostile value.
FIELDS = st.builds("{}={}".format, st.sampled_from(
    ["avg10", "avg60", "total", "dev", "ino", "ofs", "index", "ra_pages"]), VALUES)
SHORT_TOKENS = (VALUES | FIELDS | st.text(max_size=8)).map(lambda s: s.encode("utf-8"))
TOKENS = SHORT_TOKENS | st.just(b"9" * 5000)  # beyond int()'s 4300-digit limit


@st.composite
def mangled(draw: st.DrawFn, original: bytes, name: str) -> bytes:
    """``original`` with one to three edits, half of them aimed at lines the driver uses."""
    lines = original.split(b"\n")
    tokens = TOKENS
    for _ in range(draw(st.integers(1, 3))):
        aimed = [i for i, line in enumerate(lines) if any(k in line for k in KEYWORDS)]
        i = draw(st.sampled_from(aimed) if aimed and draw(st.booleans())
                 else st.integers(0, len(lines) - 1))
        fields = lines[i].split(b" ")
        j = draw(st.integers(0, len(fields) - 1))
        op = draw(st.sampled_from(("token", "cut", "extra", "dup", "drop", "bytes", "tail")))
        if op == "token":  # one value replaced
            fields[j] = draw(tokens)
            lines[i] = b" ".join(fields)
        elif op == "cut":  # a line with missing columns
            lines[i] = b" ".join(fields[:j])
        elif op == "extra":  # columns a newer kernel added
            lines[i] = b" ".join([*fields, *draw(st.lists(tokens, min_size=1, max_size=3))])
        elif op == "dup":  # the same device or key twice
            lines.insert(i, lines[i])
        elif op == "drop":
            del lines[i]
            lines = lines or [b""]
        elif op == "bytes":  # not UTF-8, not ASCII, NUL
            k = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:k] + draw(st.binary(min_size=1, max_size=6)) + lines[i][k:]
        else:  # a file cut short, e.g. a read that raced with the kernel
            text = b"\n".join(lines)
            lines = text[:draw(st.integers(0, len(text)))].split(b"\n")
    return b"\n".join(lines)


def contents(original: bytes, name: str = "") -> st.SearchStrategy[bytes | None]:
    odd = [MISSING, b"", b"\n", DIRECTORY]
    return st.one_of(
        mangled(original, name),
        st.sampled_from(odd),
        st.binary(max_size=80),
        st.text(max_size=80).map(lambda s: s.encode("utf-8")),
        SHORT_TOKENS.map(lambda b: b + b"\n"),
    )


@st.composite
def overrides(draw: st.DrawFn, base: dict[str, bytes], min_size: int = 0
              ) -> dict[str, bytes | None]:
    """New contents for up to four kernel files; the others keep ``base``."""
    names = draw(st.lists(st.sampled_from(KERNEL_FILES), min_size=min_size, max_size=4,
                          unique=True))
    return {n: draw(contents(base[n], n)) for n in names}


def advanced(base: dict[str, bytes]) -> dict[str, bytes]:
    """The capture one tick later: every device read 1000 requests of 8 KiB, so targets are
    busy and the model (not the idle rule) decides."""
    out = dict(base)
    for name, text in base.items():
        if name.startswith("sys/block/") and name.endswith("/stat"):
            f = text.decode().split()
            for col, d in {0: 1000, 1: 250, 2: 16000, 9: 500}.items():
                f[col] = str(int(f[col]) + d)
            out[name] = (" ".join(f"{int(x):8d}" for x in f) + "\n").encode()
    return out


# The capture at ticks 1, 2 and 3.
BASES = (ORIGINAL, advanced(ORIGINAL), advanced(advanced(ORIGINAL)))
# What each tick sees: the first always has something hostile, later ones may be clean.
TICKS = st.tuples(overrides(BASES[0], min_size=1), overrides(BASES[1]), overrides(BASES[2]))

# What reading read_ahead_kb back shows after each write: what the kernel really does (whole
# pages), the value verbatim, or anything at all.
REPLIES = st.lists(st.sampled_from(["pages", "verbatim"]) | contents(b"128\n"), max_size=6)

# Which devices to ask for: the configured include/exclude lists, or named ones.
DEVICES = st.sampled_from([(), ("vda",), ("loop0", "vda"), ("loop0", "loop2", "zram0")])


# -- the kernel trees --------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where a run keeps its kernel tree (``--root``) and its state directory."""

    root: Path
    state: Path

    def allowed(self, path: str, targets: Sequence[Target], trace: bool) -> bool:
        """May mltune write ``path``? Its targets' knobs, its state, its tracefs instance."""
        if path == str(self.state) or path.startswith(f"{self.state}/"):
            return True
        if trace and path.startswith(f"{self.root}/{INSTANCE}/"):
            return True
        return path in {f"{self.root}/{t.path}" for t in targets}


FAKE = Place(Path(FAKE_ROOT), Path("/state"))


def build(place: Place, tree: dict[str, bytes | None], trace: bool) -> None:
    """(Re)create the kernel tree from ``tree``: every example starts from scratch. Without
    ``trace``, as a kernel without tracefs."""
    for d in (place.root, place.state):
        if os.path.lexists(d):
            shutil.rmtree(d)
    next_tick(place, {}, tree, trace)
    if trace:
        # A tracefs skeleton as the kernel shows it, with this process's instance already
        # populated (the kernel fills an instance directory at mkdir; a plain tree does not).
        for ev in EVENTS:
            os.makedirs(place.root / TRACEFS / "events" / ev, exist_ok=True)
            for knob in ("filter", "enable"):
                set_file(place.root / INSTANCE / "events" / ev / knob, b"0\n")
        for knob in ("tracing_on", "buffer_size_kb", "options/overwrite"):
            set_file(place.root / INSTANCE / knob, b"0\n")


def next_tick(place: Place, before: dict[str, bytes | None], after: dict[str, bytes | None],
              trace: bool) -> None:
    """Change only the files that differ: a knob mltune wrote keeps what it wrote."""
    for rel in before.keys() | after.keys():
        if before.get(rel, MISSING) != after.get(rel, MISSING) \
                and (trace or not rel.startswith(TRACEFS)):
            set_file(place.root / rel, after.get(rel, MISSING))


def set_file(p: Path, data: bytes | None) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif os.path.lexists(p):
        p.unlink()
    if data is MISSING:
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    if data == DIRECTORY:
        p.mkdir()
    else:
        p.write_bytes(data)


def fake_snapshot(node: FakeFile, path: str = "") -> dict[str, bytes | None]:
    """Every file (bytes) and directory (None) of the fake filesystem under ``node``. Walks
    pyfakefs's objects: os.walk through its path resolution would cost 50 ms a time."""
    if not isinstance(node, FakeDirectory):
        return {path: node.byte_contents}
    out: dict[str, bytes | None] = {path or "/": None}
    for name, child in node.entries.items():
        out.update(fake_snapshot(child, f"{path}/{name}"))
    return out


def real_snapshot(top: Path) -> dict[str, bytes | None]:
    return {str(p): None if p.is_dir() else p.read_bytes() for p in top.rglob("*")}


def changed(before: dict[str, bytes | None], after: dict[str, bytes | None]) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p, b"?") != after.get(p, b"?")}


@dataclass
class Watch:
    """Paths mltune code changed on disk. Only mltune code runs between the two snapshots of
    a call: the test's own edits (the next capture) stay outside."""

    snapshot: Callable[[], dict[str, bytes | None]]
    touched: set[str] = field(default_factory=set)

    def __call__(self, call: Callable[..., Any], *args: Any) -> Any:
        before = self.snapshot()
        try:
            return call(*args)
        finally:
            self.touched |= changed(before, self.snapshot())


def domain_errors_only(call: Callable[..., Any], *args: Any) -> Any:
    """Run a driver call: it may fail, but only with a mltune error."""
    try:
        return call(*args)
    except MltuneError:
        return None


@dataclass
class Writes:
    """Every call of the write helpers, and the kernel's side of a read_ahead_kb write."""

    calls: list[tuple[str, str, str | None]] = field(default_factory=list)  # phase, path, value
    replies: list[Any] = field(default_factory=list)
    phase: str = "tick"

    def reset(self, replies: Sequence[Any]) -> None:
        self.calls.clear()
        self.replies = list(replies)
        self.phase = "tick"

    def kernel_reply(self, path: Path, value: str) -> None:
        """Replace what was written with what the fuzzed kernel shows."""
        if path.name != "read_ahead_kb" or not self.replies:
            return
        reply = self.replies.pop(0)
        if reply == "pages":
            data = f"{int(value) // 4 * 4}\n".encode() if value.isdigit() else None
        elif reply == "verbatim":
            data = f"{value}\n".encode()
        else:
            data = reply
        if data is not None:
            set_file(path, data)

    def knob_writes(self, phase: str) -> list[tuple[str, str | None]]:
        return [(p, v) for ph, p, v in self.calls
                if ph == phase and p.endswith("/read_ahead_kb")]

    def check(self, place: Place, watch: Watch, targets: Sequence[Target], trace: bool) -> None:
        """Nothing outside what ``place`` allows was written, through the helpers or not."""
        touched = watch.touched | {p for _, p, _ in self.calls}
        assert {p for p in touched if not place.allowed(p, targets, trace)} == set()


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    w = Writes()
    real_write, real_truncate = Root.write, Root.truncate

    def write(self: Root, rel: str, value: str, owner: str | None = None) -> None:
        w.calls.append((w.phase, str(self.path(rel)), value))
        real_write(self, rel, value, owner)
        w.kernel_reply(self.path(rel), value)

    def truncate(self: Root, rel: str) -> None:
        w.calls.append((w.phase, str(self.path(rel)), None))
        real_truncate(self, rel)

    monkeypatch.setattr(Root, "write", write)
    monkeypatch.setattr(Root, "truncate", truncate)
    monkeypatch.setattr("os.geteuid", lambda: 0)  # writing mode and tracefs need root
    return w


@pytest.fixture(scope="module")
def model(model_files: tuple[Path, Path]) -> Model:
    """Loaded from the real filesystem, before pyfakefs starts."""
    return Model.load(*model_files, "readahead", ReadaheadDriver.model_features)


@pytest.fixture(scope="module", autouse=True)
def unicode_tables() -> None:
    """Hypothesis keeps its Unicode tables in a cache on disk, which pyfakefs hides: it would
    rebuild them (1.5 s) in the first example. Have them loaded while the disk is visible."""
    find(st.text(min_size=1), bool)


@pytest.fixture
def kernel(fs: FakeFilesystem) -> Iterator[Root]:
    """A fake filesystem with mltune's shipped configuration; each example builds its own
    kernel tree at /host."""
    fs.add_real_directory(str(CONFIGS), read_only=True)
    # remove_stale_instances() asks the host's /proc whether an instance's owner is alive.
    fs.create_dir(f"/proc/{PID}")
    yield Root(FAKE_ROOT)


def assert_strict_json_lines(path: Path) -> None:
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in {path}: not JSON")

    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            json.loads(line, parse_constant=refuse)


# Every example rebuilds its tree (build()), so sharing the function-scoped fixtures between
# examples is safe. No example database: under pyfakefs it would live in the fake fs.
FUZZ = settings(deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def trees_of(ticks: Sequence[dict[str, bytes | None]]) -> list[dict[str, bytes | None]]:
    return [{**base, **over} for base, over in zip(BASES, ticks, strict=True)]


# -- the driver alone --------------------------------------------------------------------


@settings(FUZZ, max_examples=60)
@given(ticks=TICKS, devices=DEVICES, trace=st.booleans(), replies=REPLIES)
def test_driver_raises_only_domain_errors_and_writes_only_its_targets(
        kernel: Root, fs: FakeFilesystem, writes: Writes,
        ticks: tuple[dict[str, bytes | None], ...], devices: tuple[str, ...], trace: bool,
        replies: list[Any]) -> None:
    trees = trees_of(ticks)
    build(FAKE, trees[0], trace)
    writes.reset(replies)
    watch = Watch(lambda: fake_snapshot(fs.root))
    drv = ReadaheadDriver(kernel, devices=devices, trace=trace, window_s=0.0005)
    # `mltune drivers` shows availability: it never raises.
    assert isinstance(watch(drv.availability).ok, bool)
    targets = watch(domain_errors_only, drv.discover) or []

    def tick() -> None:
        obs = domain_errors_only(drv.observe, targets) or {}
        for o in obs.values():
            assert set(o.features) == set(FEATURES)
            # NaN means unknown; anything else must be a number the audit log can hold.
            assert all(isinstance(v, float) and not math.isinf(v)
                       for v in o.features.values()), o.features
        for t in targets:
            domain_errors_only(drv.current, t)
            change = domain_errors_only(drv.plan, t, 64)
            if change is not None:
                assert isinstance(change, Change) and change.path == t.path
                domain_errors_only(drv.apply, change)

    for before, after in zip([trees[0], *trees], trees, strict=False):
        next_tick(FAKE, before, after, trace)
        watch(tick)
    watch(domain_errors_only, drv.close)
    writes.check(FAKE, watch, targets, trace)
    assert {v for _, v in writes.knob_writes("tick")} <= {"64"}


# -- whole agent ticks -------------------------------------------------------------------


@settings(FUZZ, max_examples=80)
@given(ticks=TICKS, devices=DEVICES, trace=st.booleans(), dry_run=st.booleans(),
       min_gain=st.sampled_from([0.0, 0.15]), replies=REPLIES)
def test_agent_ticks_never_raise_and_write_only_targets_and_state(
        kernel: Root, fs: FakeFilesystem, writes: Writes, model: Model,
        ticks: tuple[dict[str, bytes | None], ...], devices: tuple[str, ...], trace: bool,
        dry_run: bool, min_gain: float, replies: list[Any]) -> None:
    trees = trees_of(ticks)
    build(FAKE, trees[0], trace)
    writes.reset(replies)
    watch = Watch(lambda: fake_snapshot(fs.root))
    cfg = configmod.defaults()
    ra = cfg["drivers"]["readahead"]
    # Write whenever the model prefers another value (min_gain 0 in half the examples), but
    # at most once per target in this run: ticks come back to back, well within a cooldown.
    ra["policies"].update(min_gain=min_gain, cooldown_s=3600)
    drv = ReadaheadDriver(kernel, devices=devices, exclude=ra["exclude"], trace=trace,
                          window_s=0.0005)
    # Without targets, or without a readable boot id for the journal, the command line stops
    # with one line before the first tick (see the CLI test).
    targets = watch(domain_errors_only, drv.discover)
    if not targets:
        return
    agent = watch(domain_errors_only, _make_agent, drv, model, "", targets, cfg, "readahead",
                  dry_run, FAKE.state, kernel)
    if agent is None:
        return
    for before, after in zip([trees[0], *trees], trees, strict=False):
        next_tick(FAKE, before, after, trace)
        watch(agent.tick)
    journaled = {f"{FAKE.root}/{e.path}": e.original
                 for e in (agent.journal.entries if agent.journal else [])}
    writes.phase = "shutdown"
    watch(agent.shutdown)

    writes.check(FAKE, watch, targets, trace)
    ticked = writes.knob_writes("tick")
    if dry_run:
        assert ticked == writes.knob_writes("shutdown") == []
        assert not (FAKE.state / "journal.json").exists()
    for p, v in ticked:  # within the configured range, whatever the kernel showed before
        assert v is not None and v.isdigit() and RA_RANGE[0] <= int(v) <= RA_RANGE[1], (p, v)
    # The cooldown holds whatever the kernel showed after a write.
    assert len(ticked) == len({p for p, _ in ticked}), ticked
    # Restoring puts back the value journaled before the first write, nothing else.
    restored = writes.knob_writes("shutdown")
    assert all(journaled.get(p) == v for p, v in restored), (restored, journaled)
    assert_strict_json_lines(FAKE.state / "audit.jsonl")


# -- the command line --------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Place:
    """A real directory: typer cannot convert ``--root`` to pyfakefs's Path class, so the
    command line runs against a real tree, rebuilt by every example."""
    d = tmp_path_factory.mktemp("cli")
    return Place(d / "root", d / "state")


@settings(FUZZ, max_examples=40)
@given(tree=overrides(ORIGINAL, min_size=1), devices=DEVICES, trace=st.booleans(),
       dry_run=st.booleans(), replies=REPLIES)
def test_run_once_exits_0_1_or_2_with_one_line_never_a_traceback(
        real: Place, writes: Writes, cli: Callable[..., Any],
        model_files: tuple[Path, Path], tree: dict[str, bytes | None],
        devices: tuple[str, ...], trace: bool, dry_run: bool, replies: list[Any]) -> None:
    build(real, {**ORIGINAL, **tree}, trace)
    writes.reset(replies)
    # One tick: only tracefs can show a busy device then, so only trace runs may write.
    config = real.root.parent / "mltune.yaml"
    config.write_text("drivers:\n  readahead:\n"
                      f"    trace: {'true' if trace else 'false'}\n    sample_window_s: 0.001\n"
                      "    policies: {min_gain: 0.0}\n")
    exclude = configmod.load(config)["drivers"]["readahead"]["exclude"]
    try:  # what the command will pick
        targets = ReadaheadDriver(Root(real.root), devices=devices, exclude=exclude).discover()
    except MltuneError:
        targets = []  # it exits 2 naming the device
    args = ["run", "--driver", "readahead", "--once", "--root", str(real.root), "--state-dir",
            str(real.state), "--config", str(config), "--model", str(model_files[0]),
            *[a for d in devices for a in ("--device", d)], *(["--dry-run"] if dry_run else [])]
    watch = Watch(lambda: real_snapshot(real.root.parent))
    # main() adds the lab and report commands to the module's app at every call: within one
    # process they pile up and each call gets slower. Keep the app as it was.
    saved = list(app.registered_commands), list(app.registered_groups)
    try:
        code, _, err = watch(cli, *args)
    finally:
        app.registered_commands[:], app.registered_groups[:] = saved

    assert code in (0, 1, 2), err
    lines = err.splitlines()
    assert "Traceback" not in err
    assert all(line.startswith("mltune: ") for line in lines), err
    errors = [line for line in lines if line.startswith("mltune: error: ")]
    assert errors == ([] if code == 0 else [lines[-1]]), err
    writes.check(real, watch, targets, trace)
    if dry_run:
        assert writes.knob_writes("tick") == []

"""Reading what the agent did: ``mltune explain``, ``mltune status``, ``mltune config validate``.

Audit lines are written here by hand in the agent's format (one JSON object per decision), or by
a real ``mltune run --dry-run`` on a copy of the 6.18 tree; explanations use a tiny real
LightGBM model, since feature contributions come from its ``pred_contrib``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from mltune.drivers.readahead import FEATURES, MODEL_FEATURES
from mltune.journal import Entry, Journal
from mltune.model import Model
from mltune.sysfs import Root

from tests.test_cli import one_line

LOOP0 = "sys/block/loop0/queue/read_ahead_kb"
SEQ = {"tr_seq_frac": 0.98, "tr_near_frac": 0.97, "ra_kb_log2": 7.0}
VERDICTS = [{"policy": "range", "action": "allow", "value": 1024, "reason": "within [4, 4096]"},
            {"policy": "cooldown", "action": "allow", "value": 1024, "reason": "no recent change"},
            {"policy": "min_gain", "action": "allow", "value": 1024,
             "reason": "predicted gain +0.350"}]


def decision(target: str = "loop0", current: int = 128, chosen: int = 1024,
             written: str | None = "1024", **over: object) -> dict:
    """One audit line as the agent writes it (see mltune.loop.Decision)."""
    d = {"time": 1.7e9, "driver": "readahead", "target": target, "source": "tracefs",
         "current": current, "best": 1024, "chosen": chosen, "written": written,
         "scores": {"128": 0.6, "256": 0.8, "512": 0.9, "1024": 0.95},
         "verdicts": VERDICTS, "features": {f: SEQ.get(f) for f in FEATURES},
         "tick_ms": 0.4, "note": "", "dry_run": False}
    d.update(over)
    return d


def write_audit(state: Path, *decisions: dict) -> None:
    state.mkdir(exist_ok=True)
    with open(state / "audit.jsonl", "a", encoding="utf-8") as f:
        for d in decisions:
            f.write(json.dumps(d) + "\n")


def headers(out: str) -> list[str]:
    """The first line of each block, without its local timestamp."""
    return [line.split(" ", 2)[2] for line in out.splitlines() if not line.startswith("  ")]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


# -- explain ---------------------------------------------------------------------------


def test_explain_a_write_names_scores_policies_and_the_features_that_pushed(
        cli, state: Path, model_files: tuple[Path, Path]) -> None:
    write_audit(state, decision())
    code, out, err = cli("explain", "--state-dir", str(state), "--model", str(model_files[0]))
    assert code == 0, err
    head, model, *policies, feats = out.splitlines()
    assert head.endswith(" readahead/loop0: 128 → 1024 (written)")
    assert model == "  model: best 1024=0.95, 512=0.90, 256=0.80; current 128=0.60"
    assert policies == ["  policy range: allow (within [4, 4096])",
                        "  policy cooldown: allow (no recent change)",
                        "  policy min_gain: allow (predicted gain +0.350)"]
    assert feats.startswith("  features that pushed hardest for 1024: ")
    # The tiny model learned from the sequential fraction: it leads, pushing towards 1024.
    contrib = Model.load(*model_files, "readahead", MODEL_FEATURES).contributions(
        {f: SEQ.get(f, math.nan) for f in FEATURES}, 1024)
    assert max(contrib, key=lambda f: abs(contrib[f])) == "tr_seq_frac"
    assert feats.split(": ", 1)[1].startswith(f"tr_seq_frac=0.98 ({contrib['tr_seq_frac']:+.2f})")
    assert contrib["tr_seq_frac"] > 0
    # The candidate itself is an input: shown as log2(1024), not as a missing observation.
    assert f"cand_log2=10 ({contrib['cand_log2']:+.2f})" in feats


def test_explain_a_dry_run_says_what_would_have_been_set(
        cli, state: Path, model_files: tuple[Path, Path]) -> None:
    write_audit(state, decision(written=None, dry_run=True))
    code, out, _ = cli("explain", "--state-dir", str(state), "--model", str(model_files[0]))
    assert code == 0
    assert headers(out) == ["readahead/loop0: would set 128 → 1024 (dry run)"]


def test_explain_a_frozen_target_says_nothing_was_written_and_why(
        cli, state: Path, model_files: tuple[Path, Path]) -> None:
    why = "frozen, nothing written: read_ahead_kb is 64, mltune last wrote 1024: changed outside"
    write_audit(state, decision(current=64, written=None, note=why))
    code, out, _ = cli("explain", "--state-dir", str(state), "--model", str(model_files[0]))
    assert code == 0
    assert headers(out) == ["readahead/loop0: kept 64 (wanted 1024; nothing written)"]
    assert out.splitlines()[1] == f"  note: {why}"


def test_explain_says_why_a_tick_ran_early(
        cli, state: Path, model_files: tuple[Path, Path]) -> None:
    write_audit(state, decision(trigger="watch: loop0: reads/s 180 -> 22000"))
    code, out, _ = cli("explain", "--state-dir", str(state), "--model", str(model_files[0]))
    assert code == 0
    assert out.splitlines()[1] == "  early tick: watch: loop0: reads/s 180 -> 22000"


def test_explain_says_when_the_scores_are_a_mean_of_ticks(
        cli, state: Path, model_files: tuple[Path, Path]) -> None:
    write_audit(state, decision(averaged=3))
    code, out, _ = cli("explain", "--state-dir", str(state), "--model", str(model_files[0]))
    assert code == 0
    assert [x for x in out.splitlines() if "model: best" in x][0].endswith(
        " (mean of the last 3 ticks)")


def test_explain_filters_by_target_last_and_changes(
        cli, state: Path, model_files: tuple[Path, Path]) -> None:
    write_audit(state,
                decision(time=1.7e9 + 1, current=128, chosen=128, written=None),
                decision(time=1.7e9 + 2, current=128, chosen=1024, written="1024"),
                decision(time=1.7e9 + 3, target="vda", current=8192, chosen=8192, written=None),
                decision(time=1.7e9 + 4, current=1024, chosen=1024, written=None),
                decision(time=1.7e9 + 5, target="vda", current=8192, chosen=4096,
                         written="4096"))
    model = ("--model", str(model_files[0]), "--state-dir", str(state))

    _, out, _ = cli("explain", *model, "--target", "loop0")
    assert headers(out) == ["readahead/loop0: kept 128", "readahead/loop0: 128 → 1024 (written)",
                            "readahead/loop0: kept 1024"]
    _, out, _ = cli("explain", *model, "--last", "2")
    assert headers(out) == ["readahead/loop0: kept 1024", "readahead/vda: 8192 → 4096 (written)"]
    _, out, _ = cli("explain", *model, "--changes")
    assert headers(out) == ["readahead/loop0: 128 → 1024 (written)",
                            "readahead/vda: 8192 → 4096 (written)"]
    _, out, _ = cli("explain", *model, "--changes", "--target", "vda", "--last", "1")
    assert headers(out) == ["readahead/vda: 8192 → 4096 (written)"]


def test_explain_with_nothing_matching_says_so(cli, state: Path,
                                               model_files: tuple[Path, Path]) -> None:
    write_audit(state, decision())
    code, out, _ = cli("explain", "--state-dir", str(state), "--target", "sda",
                       "--model", str(model_files[0]))
    assert (code, out) == (0, "no matching decisions\n")


def test_explain_without_audit_log_exits_2(cli, state: Path) -> None:
    code, _, err = cli("explain", "--state-dir", str(state))
    assert code == 2
    assert one_line(err) == (f"mltune: error: no audit log at {state}/audit.jsonl "
                             "(is --state-dir right?)")


def test_explain_of_a_torn_audit_line_exits_2_naming_the_line(cli, state: Path) -> None:
    write_audit(state, decision())
    with open(state / "audit.jsonl", "a", encoding="utf-8") as f:
        f.write('{"time": 1.7e9, "driv')  # the agent was killed mid-write
    code, _, err = cli("explain", "--state-dir", str(state))
    assert code == 2
    assert one_line(err).startswith(f"mltune: error: {state}/audit.jsonl:2: not JSON")


def test_explain_reads_what_a_real_dry_run_wrote_first_tick_is_idle(
        cli, root_copy: Path, state: Path, model_files: tuple[Path, Path]) -> None:
    code, _, err = cli("run", "--driver", "readahead", "--device", "loop0", "--dry-run",
                       "--once", "--root", str(root_copy), "--state-dir", str(state),
                       "--model", str(model_files[0]))
    assert code == 0, err
    code, out, err = cli("explain", "--state-dir", str(state), "--model", str(model_files[0]))
    assert code == 0, err
    [head] = headers(out)
    assert head.startswith("readahead/loop0 [advise]: ")
    # One tick of a static tree: no diskstats delta, no trace, so no evidence to act on.
    assert "idle this tick: kept" in out


# -- status ----------------------------------------------------------------------------


def changed_loop0(root_copy: Path, state: Path) -> None:
    """mltune changed loop0 128 → 1024 and kept vda: journal, audit and live value agree."""
    Journal(state, Root(root_copy)).record(
        Entry("readahead", "loop0", LOOP0, "sys/block/loop0", "128", 1.7e9))
    (root_copy / LOOP0).write_text("1024\n")
    write_audit(state, decision(),
                decision(target="vda", current=8192, chosen=8192, written=None))


def test_status_json_has_live_value_original_and_last_decision(
        cli, root_copy: Path, state: Path) -> None:
    changed_loop0(root_copy, state)
    code, out, err = cli("status", "--json", "--state-dir", str(state), "--root", str(root_copy))
    assert code == 0, err
    loop0, vda = json.loads(out)
    assert loop0 == {"target": "readahead/loop0", "current": "1024", "original": "128",
                     "changed_by_mltune": True, "frozen": None, "mode": None,
                     "mode_why": None,
                     "last_decision": {"time": 1.7e9, "current": 128, "chosen": 1024,
                                       "written": "1024", "note": ""}}
    assert (vda["target"], vda["current"], vda["original"], vda["changed_by_mltune"]) == (
        "readahead/vda", "8192", None, False)
    assert vda["last_decision"]["chosen"] == 8192


def test_status_text_is_one_line_per_target(cli, root_copy: Path, state: Path) -> None:
    changed_loop0(root_copy, state)
    code, out, _ = cli("status", "--state-dir", str(state), "--root", str(root_copy))
    assert code == 0
    loop0, vda = out.splitlines()
    assert loop0.startswith(
        "readahead/loop0  current 1024   original 128   mode -              last decision ")
    assert loop0.endswith(": 128 → 1024")
    assert vda.startswith(
        "readahead/vda    current 8192   unchanged      mode -              last decision ")


def test_status_of_a_removed_device_shows_no_current_value(cli, root_copy: Path,
                                                           state: Path) -> None:
    changed_loop0(root_copy, state)
    shutil.rmtree(root_copy / "sys/block/loop0")
    code, out, _ = cli("status", "--json", "--state-dir", str(state), "--root", str(root_copy))
    assert code == 0
    assert json.loads(out)[0]["current"] is None
    code, out, err = cli("status", "--state-dir", str(state), "--root", str(root_copy))
    assert code == 0, err
    assert out.splitlines()[0].startswith("readahead/loop0  current -      original 128 ")


def test_status_without_audit_log_still_lists_what_the_journal_would_restore(
        cli, root_copy: Path, state: Path) -> None:
    changed_loop0(root_copy, state)
    (state / "audit.jsonl").unlink()
    code, out, _ = cli("status", "--state-dir", str(state), "--root", str(root_copy))
    assert code == 0
    assert out.splitlines() == [
        "readahead/loop0  current 1024   original 128   mode -              "
            "last decision none recorded"]


def test_status_with_empty_state_dir_says_so(cli, root_copy: Path, state: Path) -> None:
    code, out, _ = cli("status", "--state-dir", str(state), "--root", str(root_copy))
    assert (code, out) == (0, f"no decisions recorded in {state}\n")


def test_status_with_corrupt_journal_exits_1(cli, root_copy: Path, state: Path) -> None:
    state.mkdir()
    (state / "journal.json").write_text('{"format": "mltune-jour')
    code, _, err = cli("status", "--state-dir", str(state), "--root", str(root_copy))
    assert code == 1
    assert one_line(err).startswith(f"mltune: error: journal {state}/journal.json is "
                                    "unreadable or corrupt")


# -- config validate -------------------------------------------------------------------


def test_config_validate_of_a_good_file_says_ok(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "mltune.yaml"
    cfg.write_text("interval: 2\ndrivers:\n  readahead:\n    policies:\n      min_gain: 0.1\n")
    code, out, err = cli("config", "validate", str(cfg))
    assert (code, out, err) == (0, f"{cfg}: ok\n", "")


def test_config_validate_of_a_bad_file_exits_2_naming_the_key_path(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "mltune.yaml"
    cfg.write_text("drivers:\n  readahead:\n    policies:\n      min_gain: high\n")
    code, out, err = cli("config", "validate", str(cfg))
    assert (code, out) == (2, "")
    assert one_line(err) == ("mltune: error: drivers.readahead.policies.min_gain: "
                             "expected a number in [0, 1], got 'high'")


def test_config_validate_of_a_missing_file_exits_2(cli, tmp_path: Path) -> None:
    code, _, err = cli("config", "validate", str(tmp_path / "none.yaml"))
    assert code == 2
    assert one_line(err) == f"mltune: error: {tmp_path}/none.yaml: No such file or directory"


def test_status_shows_each_targets_mode_and_why_an_emergency_happened(
        cli, root_copy: Path, state: Path) -> None:
    changed_loop0(root_copy, state)
    (state / "state.json").write_text(json.dumps({
        "format": "mltune-state", "version": 1, "pid": 1, "driver": "readahead",
        "frozen": {}, "advise": False,
        "modes": {"loop0": {"mode": "emergency", "why": "3 failed writes in a row: EINVAL"},
                  "vda": {"mode": "recommendation", "why": "3 changes measured as gains"}}}))
    code, out, _ = cli("status", "--state-dir", str(state), "--root", str(root_copy))
    assert code == 0
    lines = out.splitlines()
    assert " mode emergency " in lines[0] and " mode recommendation " in lines[2]
    assert lines[1].split() == ["EMERGENCY:", "3", "failed", "writes", "in", "a", "row:",
                                "EINVAL"]
    code, out, _ = cli("status", "--json", "--state-dir", str(state), "--root", str(root_copy))
    assert [(r["mode"], r["mode_why"]) for r in json.loads(out)] == [
        ("emergency", "3 failed writes in a row: EINVAL"),
        ("recommendation", "3 changes measured as gains")]


def test_explain_shows_the_measured_outcome_of_a_change(cli, state: Path) -> None:
    write_audit(state, decision(id="7-1", mode="collaboration"),
                {"kind": "outcome", "time": 1.7e9 + 4, "driver": "readahead",
                 "target": "loop0", "decision": "7-1", "old": 128, "new": 1024,
                 "verdict": "kept", "reason": "reward 2.10x of before", "before": 100.0,
                 "after": 210.0, "ratio": 2.1, "predicted": 1.58})
    code, out, _ = cli("explain", "--state-dir", str(state))
    assert code == 0
    assert headers(out) == ["readahead/loop0 [collaboration]: 128 → 1024 (written)"]
    assert out.splitlines()[-1] == ("  measured afterwards: kept (reward 2.10x of before; "
                                    "the model predicted 1.58x)")


def test_explain_and_status_read_the_rotated_audit_log_first(
        cli, state: Path, model_files: tuple[Path, Path]) -> None:
    write_audit(state, decision(time=1.7e9 + 1, current=128, chosen=1024, written="1024"))
    (state / "audit.jsonl").rename(state / "audit.jsonl.1")  # the agent's own rotation
    write_audit(state, decision(time=1.7e9 + 2, current=1024, chosen=1024, written=None))
    _, out, _ = cli("explain", "--model", str(model_files[0]), "--state-dir", str(state))
    assert headers(out) == ["readahead/loop0: 128 → 1024 (written)", "readahead/loop0: kept 1024"]
    (state / "audit.jsonl").unlink()  # rotated, and no line written since
    _, out, _ = cli("explain", "--model", str(model_files[0]), "--state-dir", str(state))
    assert headers(out) == ["readahead/loop0: 128 → 1024 (written)"]

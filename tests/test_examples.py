"""Every example configuration validates and says what its comments say."""

from __future__ import annotations

from pathlib import Path

import pytest
from mltune import config as configmod

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    configmod.validate(configmod.load(path))


def test_every_example_is_described_in_the_readme() -> None:
    text = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in EXAMPLES.glob("*.yaml") if f"`{p.name}`" not in text]
    assert missing == []


def test_cautious_starts_learning_with_small_steps() -> None:
    ra = configmod.load(EXAMPLES / "cautious.yaml")["drivers"]["readahead"]
    assert ra["mode"] == "learning"
    assert (ra["policies"]["max_step_factor"], ra["policies"]["min_gain"]) == (4, 0.20)
    assert ra["policies"]["range"] == {"min": 16, "max": 2048}
    # Keys the file leaves out keep their defaults.
    assert ra["trace_source"] == "auto"


def test_advise_writes_nothing() -> None:
    assert configmod.load(EXAMPLES / "advise.yaml")["drivers"]["readahead"]["mode"] == "advise"

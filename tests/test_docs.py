"""Every reader kind has a sample config in docs/readers/, and every sample parses: the docs cannot drift."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig
from edge_agent.readers import READERS
from tests.conftest import secret_file

DOCS = Path(__file__).parent.parent / "docs" / "readers"


def test_every_reader_kind_has_a_sample() -> None:
    assert {p.stem for p in DOCS.glob("*.toml")} == set(READERS)


@pytest.mark.parametrize("kind", sorted(READERS))
def test_sample_parses_with_its_commented_defaults(kind: str, tmp_path: Path) -> None:
    text = (DOCS / f"{kind}.toml").read_text()
    # Secret files the sample names are made here, so the sample is checked as a deployed config would be.
    for path in set(re.findall(r'"/etc/powerhub/([^"]+)"', text)):
        secret_file(tmp_path / path, "secret")
    text = text.replace('"/etc/powerhub/', f'"{tmp_path}/')
    plain = tomllib.loads(text)
    # Uncommenting every `# key = value` line must give a valid config too: the documented defaults are real keys.
    uncommented = "\n".join(line[2:] if line.startswith("# ") and " = " in line else line for line in text.splitlines())
    for doc in (plain, tomllib.loads(uncommented)):
        cfg = AgentConfig.parse({"agent": {"site": "lab", "name": "pi", **doc["agent"]}})
        assert cfg.readers[0].kind == kind

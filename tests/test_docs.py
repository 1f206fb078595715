"""Every reader kind has a sample config in docs/readers/, and every sample parses: the docs cannot drift."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from edge_agent.config import AgentConfig
from edge_agent.readers import BUILTIN
from tests.peers import secret_file

DOCS = Path(__file__).parent.parent / "docs" / "readers"


def test_every_reader_kind_has_a_sample() -> None:
    assert {p.stem for p in DOCS.glob("*.toml")} == set(BUILTIN)


@pytest.mark.parametrize("kind", sorted(BUILTIN))
def test_sample_parses_with_its_commented_defaults(kind: str, tmp_path: Path) -> None:
    text = (DOCS / f"{kind}.toml").read_text()
    # Secret files the sample names are made here, so the sample is checked as a deployed config would be.
    for path in set(re.findall(r'"/etc/powerhub/([^"]+)"', text)):
        secret_file(tmp_path / path, "secret")
    text = text.replace('"/etc/powerhub/', f'"{tmp_path}/')
    plain = tomllib.loads(text)
    # Uncommenting every `# key = value` line must give a valid config too: the documented defaults are real keys.
    uncommented = "\n".join(line[2:] if line.startswith("# ") and " = " in line else line for line in text.splitlines())
    readers = []
    for doc in (plain, tomllib.loads(uncommented)):
        cfg = AgentConfig.parse({"agent": {"site": "lab", "name": "pi", **doc["agent"]}})
        assert cfg.readers[0].kind == kind
        readers.append(repr(cfg.readers[0]))
    # ...and they are the code's defaults: uncommenting them changes nothing (a default changed in one place fails).
    assert readers[0] == readers[1]


def test_readme_hardened_config_parses(tmp_path: Path) -> None:
    from hub.config import HubConfig
    from hub.mqtt_acl import accounts
    from web.auth import new_token
    from web.config import WebConfig

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("A hardened config", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    for path in set(re.findall(r'"/etc/powerhub/([^"]+)"', block)):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        secret_file(tmp_path / path, "secret")
    block = block.replace('"/etc/powerhub/', f'"{tmp_path}/').replace("sha256:…", new_token()[1])
    doc = tomllib.loads(block)
    hub = HubConfig.parse({k: v for k, v in doc.items() if k != "web"})
    assert hub.mqtt.tls and hub.mqtt.password == "secret" and hub.listen == ("127.0.0.1", 9108)
    assert WebConfig.from_doc(doc).trusted_proxies
    assert [a.username for a in accounts(doc)] == ["lab-basement-pi", "hub"]


def test_readme_formulas_config_parses() -> None:
    from hub.config import HubConfig

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("## Formulas", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    doc = tomllib.loads(block)
    doc["inventory"] = {"machines": [{"name": "node17", "site": "lab", "sources": ["node17.power"]}]}
    cfg = HubConfig.parse(doc)
    assert [f.name for f in cfg.formulas] == ["rollup", "machine_power", "reconcile", "load_model", "energy"]
    assert cfg.home_assistant is not None and cfg.home_assistant.prefix == "homeassistant"


README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_names_every_reader_kind_profile_formula_and_section() -> None:
    """The prose lists a new reader, PDU profile, formula or config section must join, checked against the
    registries they mirror."""
    from edge_agent.readers.pdu_profiles import PROFILES
    from hub.formulas import FORMULAS
    from telemetry.config import SECTIONS

    configure = README.split("## Configure", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    assert set(re.findall(r'^kind = "(\w+)"', configure, re.M)) == set(BUILTIN)
    profiles = re.search(r'^profile = "apc" +# (.+?) \(', configure, re.M)
    assert profiles and set(profiles.group(1).split(" | ")) == {*PROFILES, "custom"}
    table = README.split("## Formulas", 1)[1].split("```toml", 1)[0]
    assert set(re.findall(r"^\| `(\w+)`", table, re.M)) == set(FORMULAS)
    for section in SECTIONS:
        assert f"[{section}]" in README or f"[[{section}." in README, section

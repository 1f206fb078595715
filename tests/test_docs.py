"""Every reader kind has a sample config in docs/readers/, and every sample parses: the docs cannot drift."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge_agent.config import AgentConfig
from edge_agent.readers import BUILTIN
from telemetry.config import recording_defaults
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


# --- every key the code reads is documented, with the code's default ----------------------------------------------

GETTERS = {"string", "name", "integer", "number", "boolean", "str_list", "str_map", "table", "tables", "secret",
           "private_file", "listen"}


def keys_read(module_name: str, seen: set[str] | None = None) -> set[str]:
    """The literal keys a module reads through `Section`'s getters, and those of the reader modules it imports:
    found in the source, so keys read only in one branch (SNMPv3, a custom profile) count as well."""
    seen = seen if seen is not None else set()
    seen.add(module_name)
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(inspect.getsourcefile(module) or "").read_text())
    keys = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in GETTERS
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            keys.add(node.args[0].value)
        if (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edge_agent.readers.")
                and node.module != "edge_agent.readers.base" and node.module not in {*BUILTIN.values(), *seen}):
            keys |= keys_read(node.module, seen)
    return keys


@pytest.mark.parametrize("kind", sorted(BUILTIN))
def test_every_key_a_reader_reads_is_in_its_sample(kind: str) -> None:
    text = (DOCS / f"{kind}.toml").read_text()
    undocumented = sorted(key for key in keys_read(BUILTIN[kind])
                          if not re.search(rf"(^|[\s{{#]){re.escape(key)}(_file)? *=|\.{re.escape(key)}\]", text, re.M))
    assert not undocumented, f"docs/readers/{kind}.toml does not show {undocumented}"


def code_defaults() -> dict[str, Any]:
    from hub.config import HubConfig
    from hub.formulas import FORMULAS
    from web.config import WebConfig

    machines = {"machines": [{"name": "node17", "site": "lab", "sources": ["pdu-a3.outlet-1"]}]}
    with recording_defaults() as found:
        HubConfig.parse({"formulas": {"enabled": sorted(FORMULAS), "reconcile": {"main": {"lab": "meter.power"}}},
                         "inventory": machines})
        WebConfig.from_doc({})
        AgentConfig.parse({"agent": {"site": "lab", "name": "pi", "readers": [{"kind": "host_load", "device": "x"}]}})
    return {path: default for path, default in found.items() if "readers[" not in path}


def test_every_key_of_every_section_is_in_the_readme() -> None:
    """The README's config blocks name every key (`key = ...`, `` `key` `` or its `[table]`): a key added to a
    parser and nowhere in the README fails here."""
    missing = []
    for path in code_defaults():
        leaf = path.rsplit(".", 1)[-1]
        if "." in path and not re.search(rf"(^|[\s`{{#]){re.escape(leaf)} *=|`{re.escape(leaf)}`|\[{re.escape(path)}\]",
                                         README, re.M):
            missing.append(path)
    assert not missing, f"README.md does not document {missing}"


# Ansible role variables that are the code's defaults, not deployment choices (those differ on purpose:
# hub_listen opens the hub's metrics, edge_agent_wait_for_hub assumes a deployed hub, hub_store_url is InfluxDB).
ANSIBLE_MIRRORS = {
    ("hub", "hub_mqtt_url"): "mqtt.url", ("hub", "hub_mqtt_root"): "mqtt.root",
    ("hub", "hub_client_id"): "hub.client_id", ("hub", "hub_formulas"): "formulas.enabled",
    ("edge_agent", "edge_agent_mqtt_url"): "mqtt.url", ("edge_agent", "edge_agent_mqtt_root"): "mqtt.root",
    ("edge_agent", "edge_agent_outbox_max_mb"): "agent.outbox_max_mb",
    ("web", "web_listen"): "web.listen", ("web", "web_allow"): "web.allow",
    ("web", "web_trusted_proxies"): "web.trusted_proxies", ("web", "web_url_prefix"): "web.url_prefix",
    ("web", "web_tokens"): "web.tokens", ("mosquitto", "mosquitto_root"): "mqtt.root",
}


def test_ansible_defaults_that_mirror_the_code_agree_with_it() -> None:
    found = code_defaults()
    roles = Path(__file__).parent.parent / "ansible" / "roles"
    for (role, variable), path in ANSIBLE_MIRRORS.items():
        defaults = yaml.safe_load((roles / role / "defaults" / "main.yml").read_text())
        assert defaults[variable] == found[path], f"{role}: {variable} is {defaults[variable]!r}, the code's " \
                                                  f"{path} default is {found[path]!r}"


def test_sample_config_prints_each_sample_and_lists_the_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    from powerhub_cli import main

    assert main(["sample-config", "snmp_pdu"]) == 0
    assert capsys.readouterr().out == (DOCS / "snmp_pdu.toml").read_text()
    assert main(["sample-config"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == sorted(BUILTIN)
    assert main(["sample-config", "snmp-pdu"]) == 2
    assert "no reader kind 'snmp-pdu'" in capsys.readouterr().err


def test_the_contracts_page_names_every_route() -> None:
    """docs/contracts.md is the repository's own statement of the contracts: a route added to the OpenAPI document
    and not named there fails (blipserver routes by their id-less form, which the page lists)."""
    from web.openapi import document

    contracts = (Path(__file__).parent.parent / "docs" / "contracts.md").read_text()
    named = [path.replace("{series_id}", "{id}").replace("/{blip_id}", "") for path in document()["paths"]]
    missing = [path for path in named if f"`{path}`" not in contracts]
    assert not missing, f"docs/contracts.md does not name {missing}"

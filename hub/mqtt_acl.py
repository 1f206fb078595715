"""`powerhub mqtt-acl`: Mosquitto's password and ACL files from `[inventory]`, so people and the playbook use one
generator. Each agent may write only its own site's data and its own status, and read the hubs' "subscribed"
markers; the hub (and the web app, which can share its account) may only read them, and write its marker and alerts.

The password file is in Mosquitto 2's own format, as `mosquitto_passwd` writes it: `user:$7$101$salt$hash`, PBKDF2
with SHA-512, 101 iterations, a 12-byte salt and a 64-byte key, both base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from telemetry.config import ConfigError, MqttConfig, Section
from telemetry.topics import alert_filter, hub_filter, web_filter

PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default
SALT_BYTES = 12


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 64)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def accounts(doc: dict[str, object]) -> list[Account]:
    """The agents of `[[inventory.agents]]` and the hub of `[inventory.hub]`, with the topics each may use."""
    top = Section(doc, "")
    root = MqttConfig.parse(top.table("mqtt")).root
    ha_prefix = top.table("hub").table("home_assistant").data.get("prefix", "homeassistant")
    inventory = top.table("inventory")
    out: list[Account] = []
    for sec in inventory.tables("agents"):
        site, name = sec.name("site"), sec.name("name")
        password = sec.secret("password", required=True)
        assert password is not None
        sec.finish()
        out.append(Account(f"{site}-{name}", password, write=(f"{root}/data/{site}/#", f"{root}/status/{site}/{name}"),
                           read=(hub_filter(root),)))  # the hubs' "subscribed" markers (agent.wait_for_hub)
    hub = inventory.table("hub")
    if hub.data:
        password = hub.secret("password", required=True)
        assert password is not None
        # Home Assistant discovery (hub.home_assistant): the hub writes sensor (and alert binary sensor) configs
        # and states, reads HA's birth.
        # Alerts: the hub writes them, the web app (sharing the account) reads them and its own sync probe.
        out.append(Account(hub.string("username", "hub"), password,
                           write=(hub_filter(root), f"{root}/ha/#", f"{ha_prefix}/sensor/#",
                                  f"{ha_prefix}/binary_sensor/#", alert_filter(root), web_filter(root)),
                           read=(f"{root}/data/#", f"{root}/status/#", f"{ha_prefix}/status", alert_filter(root),
                                 web_filter(root))))
        hub.finish()
    names = [a.username for a in out]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"inventory: the MQTT username {name!r} is given twice")
    if not out:
        raise ConfigError("inventory: no [[inventory.agents]] and no [inventory.hub]: nothing to write")
    return out


def acl_text(accounts: list[Account]) -> str:
    lines = ["# Written by `powerhub mqtt-acl` from [inventory]; edit the inventory, not this file.", ""]
    for a in accounts:
        lines.append(f"user {a.username}")
        lines += [f"topic write {t}" for t in a.write]
        lines += [f"topic read {t}" for t in a.read]
        lines.append("")
    return "\n".join(lines)


def verifies(line_hash: str, password: str) -> bool:
    """Whether a `$7$iterations$salt$key` hash is of this password (so it can be kept as it is)."""
    parts = line_hash.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt, key = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    return hmac.compare_digest(hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(key)), key)


def passwd_text(accounts: list[Account], old_text: str = "") -> str:
    """Each account's line; one whose old hash still verifies is kept as it was, so a re-run changes no byte
    (a new salt each time would make every `ansible-playbook` run a change and a broker reload)."""
    old = dict(line.split(":", 1) for line in old_text.splitlines() if ":" in line)
    lines = []
    for a in accounts:
        kept = old.get(a.username, "")
        lines.append(f"{a.username}:{kept if verifies(kept, a.password) else mosquitto_hash(a.password)}\n")
    return "".join(lines)


def write(doc: dict[str, object], out_dir: Path) -> tuple[list[Account], list[str]]:
    """Write `passwd` and `acl` where they differ from what is there; returns the accounts and the files changed."""
    found = accounts(doc)
    out_dir.mkdir(parents=True, exist_ok=True)
    passwd, acl = out_dir / "passwd", out_dir / "acl"
    old_passwd = passwd.read_text() if passwd.exists() else ""
    changed = []
    new_passwd = passwd_text(found, old_passwd)
    if new_passwd != old_passwd or passwd.stat().st_mode & 0o777 != 0o600:
        _write_private(passwd, new_passwd)
        changed.append("passwd")
    new_acl = acl_text(found)
    if not acl.exists() or acl.read_text() != new_acl:
        acl.write_text(new_acl)
        changed.append("acl")
    return found, changed


def _write_private(path: Path, text: str) -> None:
    """Written 0600 from the first byte: hashes are still worth guarding. A file replaced keeps its owner (the broker's
    user, who reads it again on reload)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        if path.exists() and os.geteuid() == 0:
            old = path.stat()
            os.fchown(fh.fileno(), old.st_uid, old.st_gid)
    os.replace(tmp, path)

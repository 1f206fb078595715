"""TOML config checking shared by every subcommand: typed getters that name the key's path on error.

A `Section` wraps one TOML table; each getter consumes a key, and `finish()` refuses keys nobody consumed, so a
misspelt key fails at start-up with its path (`agent.readers[2].community: ...`) instead of being ignored.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import threading
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from telemetry.errors import PowerhubError
from telemetry.names import NameError_, check_name

T = TypeVar("T")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class ConfigError(PowerhubError, ValueError):
    """A config problem; the message starts with the key's path."""

    exit_status = 2
    kind = "config error"


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


_recorders = threading.local()


@contextlib.contextmanager
def recording_defaults() -> Iterator[dict[str, Any]]:
    """Every key the parsers read in this thread, by its path, with its default (`REQUIRED` for a required key):
    the defaults as the code declares them, once, for the checks that docs and Ansible's defaults agree with them."""
    found: dict[str, Any] = {}
    _recorders.found = found
    try:
        yield found
    finally:
        _recorders.found = None


class Section:
    def __init__(self, data: dict[str, Any] | None, path: str) -> None:
        self.data = dict(data or {})
        self.path = path
        self._seen: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.key_path(key)}: {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, default: Any, types: tuple[type, ...], type_name: str) -> Any:
        self._seen.add(key)
        found = getattr(_recorders, "found", None)
        if found is not None:
            found[self.key_path(key)] = default
        if key not in self.data:
            if default is REQUIRED:
                raise self.error(key, "required")
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in types:
            raise self.error(key, f"must be {type_name}, not {value!r}")
        if not isinstance(value, types):
            raise self.error(key, f"must be {type_name}, not {value!r}")
        return value

    def listen(self, key: str, default: str | None) -> tuple[str, int] | None:
        """`host:port` to bind (port 0: any free port; `[::1]:8080` for IPv6), or None when absent and no default."""
        listen = self.string(key, default)
        if listen is None:
            return None
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise self.error(key, f"must be host:port (port 0: any free port), not {listen!r}")
        return host.strip("[]"), int(port)

    def string(self, key: str, default: Any = REQUIRED, choices: tuple[str, ...] = ()) -> Any:
        value = self._get(key, default, (str,), "a string")
        if choices and value is not None and value not in choices:
            raise self.error(key, f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        return value

    def name(self, key: str, default: Any = REQUIRED) -> str:
        value = self.string(key, default)
        try:
            return check_name(key, value)
        except NameError_ as exc:
            raise self.error(key, str(exc)) from None

    def integer(self, key: str, default: Any = REQUIRED, min_value: int | None = None) -> Any:
        value = self._get(key, default, (int,), "an integer")
        if min_value is not None and value is not None and value < min_value:
            raise self.error(key, f"must be at least {min_value}, not {value}")
        return value

    def number(self, key: str, default: Any = REQUIRED, positive: bool = False) -> Any:
        value = self._get(key, default, (int, float), "a number")
        if positive and value is not None and not value > 0:
            raise self.error(key, f"must be greater than 0, not {value}")
        return None if value is None else float(value)

    def boolean(self, key: str, default: Any = REQUIRED) -> Any:
        return self._get(key, default, (bool,), "true or false")

    def str_list(self, key: str, default: Any = REQUIRED) -> Any:
        value = self._get(key, default, (list,), "a list of strings")
        if value is not default and not all(isinstance(v, str) for v in value):
            raise self.error(key, "must be a list of strings")
        return value

    def str_map(self, key: str) -> dict[str, str]:
        value = self._get(key, {}, (dict,), "a table of strings")
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.error(f"{key}.{k}", f"must be a string, not {v!r}")
        return dict(value)

    def table(self, key: str) -> Section:
        return Section(self._get(key, {}, (dict,), "a table"), self.key_path(key))

    def tables(self, key: str) -> list[Section]:
        value = self._get(key, [], (list,), "an array of tables")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(f"{self.key_path(key)}[{i}]: must be a table")
            out.append(Section(item, f"{self.key_path(key)}[{i}]"))
        return out

    def secret(self, key: str, required: bool = False) -> str | None:
        """`key` inline or `key_file` (first line of the file); the file wins where both are given."""
        inline = self.string(key, None)
        file_name = self.string(f"{key}_file", None)
        if file_name is not None:
            lines = self._secret_file(f"{key}_file", file_name).splitlines()
            return lines[0].strip() if lines else ""
        if inline is None and required:
            raise self.error(key, f"required (or {key}_file)")
        return inline

    def private_file(self, key: str) -> str | None:
        """A path to a file holding a secret (a TLS key): it must exist and be private, like `*_file` secrets."""
        path = self.string(key, None)
        if path is not None:
            self._secret_file(key, path)
        return path

    def _secret_file(self, key: str, path: str) -> str:
        """The file's text, refused if others than its owner may read it: a secret in a 0644 file is no secret."""
        try:
            mode = os.stat(path).st_mode
            if mode & 0o077:
                raise self.error(key, f"{path} is readable by group or others (mode {mode & 0o777:o}): chmod 600 it")
            return Path(path).read_text()
        except OSError as exc:
            raise self.error(key, f"cannot read {path}: {exc.strerror}") from None

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            raise self.error(unknown[0], f"unknown key{did_you_mean(unknown[0], self._seen)}")


def did_you_mean(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


# The top-level sections of a config file: each subcommand reads some and checks every key of those; a section no
# subcommand knows (`[formula]`, `[stor]`) fails every one of them at start.
SECTIONS = ("agent", "alerts", "formulas", "hub", "inventory", "mqtt", "store", "web")


def check_sections(doc: dict[str, Any]) -> None:
    for name, value in doc.items():
        if name not in SECTIONS:
            raise ConfigError(f"{name}: unknown section{did_you_mean(name, SECTIONS)} (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: must be a table ([{name}]), not {value!r}"[:200])


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    tls: bool
    protocol: str
    username: str | None
    password: str | None
    ca_file: str | None
    root: str
    cert_file: str | None = None  # a client certificate, where the broker asks for one
    key_file: str | None = None

    @staticmethod
    def parse(sec: Section) -> MqttConfig:
        url = sec.string("url", "mqtt://127.0.0.1:1883")
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise sec.error("url", f"must be mqtt://host:port or mqtts://host:port, not {url!r}")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError:
            raise sec.error("url", f"bad port in {url!r}") from None
        root = sec.string("root", "powerhub")
        if not root or any(c in root for c in "#+") or root.startswith("/") or root.endswith("/"):
            raise sec.error("root", f"must be a topic prefix without wildcards or outer slashes, not {root!r}")
        cfg = MqttConfig(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "mqtts",
            protocol=sec.string("protocol", "5", choices=("5", "3.1.1")),
            username=sec.string("username", unquote(parts.username) if parts.username else None),
            password=sec.secret("password"),
            ca_file=sec.string("ca_file", None),
            root=root,
            cert_file=sec.string("cert_file", None),
            key_file=sec.private_file("key_file"),
        )
        if (cfg.cert_file is None) != (cfg.key_file is None):
            raise sec.error("cert_file" if cfg.cert_file is None else "key_file", "cert_file and key_file go together")
        if (cfg.ca_file or cfg.cert_file) and not cfg.tls:
            raise sec.error("url", "ca_file and cert_file need TLS: use mqtts://")
        sec.finish()
        return cfg


def state_path(file_name: str) -> str:
    """Default location of a state file: systemd's StateDirectory when set, else ./var/ beside the caller."""
    base = os.environ.get("STATE_DIRECTORY", "var")
    return str(Path(base.split(":")[0]) / file_name)


SECRET_KEYS = ("password", "token", "community", "auth_key", "priv_key", "secret")


def redact(doc: Any) -> Any:
    """A config document with every secret value replaced by `***` (keys named like secrets, and passwords in
    URLs); `*_file` keys name files and are kept. For `--print-config` and anything else that shows a config."""
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if isinstance(value, str) and key.endswith(SECRET_KEYS):
                out[key] = "***"
            elif isinstance(value, str) and (key == "url" or key.endswith("_url")):
                out[key] = redact_url(value)
            else:
                out[key] = redact(value)
        return out
    if isinstance(doc, list):
        return [redact(v) for v in doc]
    return doc


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***`, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()

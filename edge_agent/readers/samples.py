"""Each reader kind's sample config, `docs/readers/KIND.toml`: its commented lines show the defaults, and
tests/test_docs.py checks them and every key against the code. `powerhub sample-config KIND` prints it."""

from __future__ import annotations

import sys
from pathlib import Path

from edge_agent.readers.base import BUILTIN
from telemetry.errors import UsageError

# A checkout (an editable install) has them in docs/; a wheel installs them as data files under the prefix.
SAMPLE_DIRS = (Path(__file__).resolve().parents[2] / "docs" / "readers",
               Path(sys.prefix) / "share" / "powerhub" / "readers")


def sample_config(kind: str) -> str:
    if kind not in BUILTIN:
        raise UsageError(f"no reader kind {kind!r} (known: {', '.join(sorted(BUILTIN))})")
    for folder in SAMPLE_DIRS:
        path = folder / f"{kind}.toml"
        if path.is_file():
            return path.read_text()
    raise UsageError(f"the sample for {kind} is not installed (looked in {', '.join(map(str, SAMPLE_DIRS))})")

"""The one base of every error a user may see. The command line catches it once: one line on stderr, the class's
exit status, never a traceback (`powerhub --debug` shows one). Web routes turn their own into the one JSON shape."""

from __future__ import annotations


class PowerhubError(Exception):
    exit_status = 1
    kind = ""  # what the command line says before the message: "config error", "store unavailable"


class UsageError(PowerhubError):
    """Bad arguments: an unknown series, an inverted range, a time zone that does not exist."""

    exit_status = 2


EXIT_STATUSES = {1: "an error", 2: "bad config or arguments", 3: "the store is unavailable"}

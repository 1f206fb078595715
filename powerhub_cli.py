"""`powerhub`: one console script, one subcommand per program (SPEC.md section 5)."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from telemetry.config import check_sections, load_toml, redact
from telemetry.errors import EXIT_STATUSES, PowerhubError, UsageError
from telemetry.exportformats import FORMATS

log = logging.getLogger("powerhub")
VERSION = importlib.metadata.version("powerhub")


class Flagged(PowerhubError):
    """`inventory --check` found something: its report says what."""


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def cmd_agent(doc: dict[str, Any], args: argparse.Namespace) -> None:
    from edge_agent import agent
    from edge_agent.config import AgentConfig

    cfg = AgentConfig.parse(doc)
    agent.run(cfg, args.stdout, _stop_on_signals())


def cmd_hub(doc: dict[str, Any], _args: argparse.Namespace) -> None:
    from hub import run
    from hub.config import HubConfig

    run.run(HubConfig.parse(doc), _stop_on_signals())


def cmd_web(doc: dict[str, Any], _args: argparse.Namespace) -> None:
    from web import create_app
    from web.server import serve

    app = create_app(doc)
    serve(app, _stop_on_signals())


def _series_and_range(doc: dict[str, Any], args: argparse.Namespace) -> tuple[Any, Any, int, int]:
    """The store (never created: these commands only read), the series (it must exist) and the half-open range
    that `export` and `plot` take from their arguments."""
    from hub.config import StoreConfig
    from hub.stores import open_store
    from telemetry.config import Section
    from telemetry.names import NameError_, parse_series_id
    from telemetry.payload import END_TS_MS
    from telemetry.timeunits import DAY_MS, local_day, now_ms, time_zone

    store_cfg = StoreConfig.parse(Section(doc.get("store"), "store"))
    try:
        key = parse_series_id(args.series)
        try:
            tz = time_zone(args.tz)
        except ValueError as exc:
            raise UsageError(f"--tz {exc}") from None
        if args.date:
            from_ms, to_ms = local_day(args.date, tz)
        else:
            to_ms = args.to if args.to is not None else now_ms()
            from_ms = args.from_ms if args.from_ms is not None else to_ms - DAY_MS
    except (NameError_, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if from_ms >= to_ms:
        raise UsageError(f"--from ({from_ms}) must be before --to ({to_ms})")
    store = open_store(store_cfg.url, store_cfg.token, create=False)
    try:
        if not store.points(key, 0, END_TS_MS, 1):
            raise UsageError(f"unknown series {key.id!r}: the store has no point of it")
    except BaseException:
        store.close()
        raise
    return store, key, from_ms, to_ms


def cmd_export(doc: dict[str, Any], args: argparse.Namespace) -> None:
    from telemetry.exportformats import HEADER_LINES
    from telemetry.timeunits import time_zone
    from web.export import csv_lines, range_points, with_progress

    store, key, from_ms, to_ms = _series_and_range(doc, args)
    out = open(args.output, "w", encoding="utf-8") if args.output != "-" else sys.stdout  # noqa: SIM115
    points = range_points(store, key, from_ms, to_ms)
    if sys.stderr.isatty() and out is not sys.stdout:  # a progress line only where a person watches
        points = with_progress(points, from_ms, to_ms, sys.stderr)
    rows = 0
    try:
        for line in csv_lines(points, args.format, time_zone(args.tz)):
            out.write(line)
            rows += 1
    finally:
        if out is not sys.stdout:
            out.close()
        store.close()
    log.info("exported %d points of %s", max(0, rows - HEADER_LINES[args.format]), key.id)


def cmd_plot(doc: dict[str, Any], args: argparse.Namespace) -> None:
    try:
        from web import plot
    except ImportError:
        raise PowerhubError("needs matplotlib: pip install 'powerhub[plot]'") from None
    from telemetry.names import parse_series_id

    store, key, from_ms, to_ms = _series_and_range(doc, args)
    try:
        load = parse_series_id(args.load) if args.load else None
        plot.render(store, key, from_ms, to_ms, args.output, load)
    finally:
        store.close()
    log.info("plotted %s to %s", key.id, args.output)


def cmd_formula(doc: dict[str, Any], args: argparse.Namespace) -> None:
    from hub.config import HubConfig
    from hub.formulas import FORMULAS, FormulaRunner
    from hub.stores import open_store
    from telemetry.timeunits import DAY_MS, now_ms

    cfg = HubConfig.parse(doc)
    enabled = sorted(f.name for f in cfg.formulas)
    if args.name not in enabled:
        raise UsageError(f"{args.name!r} is not in [formulas] enabled (enabled: {', '.join(enabled) or 'none'}; "
                         f"known: {', '.join(sorted(FORMULAS))})")
    to_ms = args.to if args.to is not None else now_ms()
    from_ms = args.from_ms if args.from_ms is not None else to_ms - DAY_MS
    if from_ms >= to_ms:
        raise UsageError(f"--from ({from_ms}) must be before --to ({to_ms})")
    store = open_store(cfg.store.url, cfg.store.token)
    try:
        written = FormulaRunner(store, cfg.formulas).replay(args.name, from_ms, to_ms)
    finally:
        store.close()
    print(f"{args.name}: wrote {written} derived points for [{from_ms}, {to_ms})")


def cmd_inventory(doc: dict[str, Any], args: argparse.Namespace) -> None:
    from hub import inventory
    from hub.config import StoreConfig
    from hub.stores import open_store
    from telemetry.config import Section
    from telemetry.inventory import parse_machines, parse_pdus

    machines, ratings = parse_machines(Section(doc, "")), parse_pdus(Section(doc, ""))
    store_cfg = StoreConfig.parse(Section(doc.get("store"), "store"))
    store = open_store(store_cfg.url, store_cfg.token, create=False)
    try:
        report = inventory.build(store.series(), machines, args.min_w, ratings=ratings)
    finally:
        store.close()
    sys.stdout.write(inventory.render(report))
    if args.check and report.flagged:
        raise Flagged("something is flagged (above)")


def cmd_mqtt_acl(doc: dict[str, Any], args: argparse.Namespace) -> None:
    from pathlib import Path

    from hub import mqtt_acl

    found, changed = mqtt_acl.write(doc, Path(args.out))
    # The last line is for the playbook: `changed: nothing` means no reload is needed.
    print(f"{len(found)} accounts: " + ", ".join(a.username for a in found))
    print("changed: " + (" and ".join(f"{args.out}/{name}" for name in changed) if changed else "nothing"))


def cmd_token(_doc: dict[str, Any], _args: argparse.Namespace) -> None:
    from web.auth import new_token

    token, hashed = new_token()
    print(f"token (give it to the client; it is not stored): {token}")
    print(f'config line:  tokens = ["{hashed}"]   # under [web]')


def cmd_sample_config(_doc: dict[str, Any], args: argparse.Namespace) -> None:
    from edge_agent.readers import BUILTIN
    from edge_agent.readers.samples import sample_config

    if args.kind is not None:
        sys.stdout.write(sample_config(args.kind))
        return
    for kind in sorted(BUILTIN):  # each sample's first sentence says what the reader reads
        head = " ".join(line.removeprefix("# ") for line in sample_config(kind).split("\n\n")[0].splitlines())
        print(head.split(". ")[0].rstrip("."))


def cmd_demo(doc: dict[str, Any], args: argparse.Namespace) -> None:
    from powerhub_demo import run_demo

    run_demo(doc, args.port, args.var, _stop_on_signals())


COMMANDS: dict[str, tuple[Callable[[dict[str, Any], argparse.Namespace], None], str]] = {
    "agent": (cmd_agent, "read meters, keep points in the outbox, publish them to MQTT"),
    "hub": (cmd_hub, "subscribe to the agents' data and store it"),
    "web": (cmd_web, "serve the dashboard, the HTTP API and the blipserver routes"),
    "export": (cmd_export, "write a series' points as CSV (ours, or PowerGraph's file)"),
    "formula": (cmd_formula, "run a formula over stored points (post-mortem); the hub runs them live"),
    "plot": (cmd_plot, "draw a series' power (and its machine's CPU load) to a PNG"),
    "inventory": (cmd_inventory, "list PDUs, outlets, phases and machines; flag what is unmapped or unrated"),
    "mqtt-acl": (cmd_mqtt_acl, "write Mosquitto's password and ACL files from [inventory]"),
    "token": (cmd_token, "make a new API token and the hash for web.tokens"),
    "demo": (cmd_demo, "the whole system in one process: broker, simulated meters, hub, web"),
    "sample-config": (cmd_sample_config, "print a reader kind's sample config, its defaults commented"),
}


def _effective(doc: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """What `--print-config` shows: the file, or for the demo the whole config it runs with."""
    if args.command != "demo":
        return doc
    from pathlib import Path

    from powerhub_demo import demo_config

    cfg = demo_config(doc, Path(args.var), 0, args.port)
    if not doc.get("mqtt"):
        cfg["mqtt"]["url"] = "mqtt://127.0.0.1:PORT (the embedded broker, on a free port at start)"
    return cfg


def parser() -> argparse.ArgumentParser:
    statuses = "; ".join(f"{code}: {what}" for code, what in EXIT_STATUSES.items())
    p = argparse.ArgumentParser(prog="powerhub", description="Edge-to-hub power telemetry.",
                                epilog=f"exit status: 0: done; {statuses}")
    p.add_argument("--version", action="version", version=f"powerhub {VERSION}")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    p.add_argument("--debug", action="store_true", help="log debug messages, and show a traceback with an error")
    sub = p.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.add_argument("--config", metavar="FILE", required=name not in ("demo", "token", "sample-config"),
                        help="TOML config file")
        sp.add_argument("--print-config", action="store_true", help="print the config with secrets hidden, and exit")
        if name == "agent":
            sp.add_argument(
                "--stdout", action="store_true", help="print points as `topic payload` lines; publish nothing",
            )
        if name in ("export", "plot"):
            sp.add_argument("--series", required=True, help="series id, e.g. lab.mainmeter.power")
            sp.add_argument("--from", dest="from_ms", type=int, help="Unix ms (default: 24 h before --to)")
            sp.add_argument("--to", type=int, help="Unix ms, exclusive (default: now)")
            sp.add_argument("--date", help="a day, YYYY-MM-DD (in --tz), instead of --from/--to")
            sp.add_argument("--tz", default="UTC", help="IANA time zone of --date, and of powergraph-daily's times "
                                                       "(default UTC)")
        if name == "export":
            sp.add_argument("--format", choices=FORMATS, default="csv",
                            help="csv: ours; powergraph: PowerGraph's last.csv; powergraph-daily: its data/DAY.csv")
            sp.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
        if name == "plot":
            sp.add_argument("--load", help="the CPU load series (default: load1 of the device or its machine)")
            sp.add_argument("-o", "--output", required=True, help="the PNG to write")
        if name == "inventory":
            sp.add_argument("--min-w", type=float, default=1.0,
                            help="an outlet draws power from this many watts on (default 1; idle outlets read ~0)")
            sp.add_argument("--check", action="store_true", help="exit 1 when anything is flagged")
        if name == "formula":
            sp.add_argument("name", help="a formula in [formulas] enabled, e.g. energy")
            sp.add_argument("--from", dest="from_ms", type=int, help="Unix ms (default: 24 h before --to)")
            sp.add_argument("--to", type=int, help="Unix ms, exclusive (default: now)")
        if name == "mqtt-acl":
            sp.add_argument("--out", required=True, metavar="DIR", help="directory for `passwd` and `acl`")
        if name == "sample-config":
            sp.add_argument("kind", nargs="?", help="a reader kind; without one, the kinds are listed")
        if name == "demo":
            sp.add_argument("--port", type=int, default=8080, help="web port on 127.0.0.1 (default 8080)")
            sp.add_argument("--var", default="var", help="directory for the demo's store and outbox (default ./var)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "web" and argv is None and not args.print_config:
        # Run as a program (not called from tests): patch before the app's modules are imported, so their sockets,
        # locks and queues cooperate with gevent's server (web/server.py).
        from gevent import monkey

        monkey.patch_all()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose or args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "agent" and args.stdout:
        logging.getLogger().setLevel(logging.WARNING if not args.verbose else logging.DEBUG)
    try:
        doc = load_toml(args.config) if args.config else {}
        check_sections(doc)
        if args.print_config:
            print(json.dumps(redact(_effective(doc, args)), indent=2, default=str))
            return 0
        COMMANDS[args.command][0](doc, args)
        sys.stdout.flush()  # here, so that a closed pipe is seen below
    except BrokenPipeError:
        # `powerhub export ... | head`: the reader has what it wanted. Python would complain again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except PowerhubError as exc:
        if args.debug:
            traceback.print_exc()
        kind = f"{exc.kind}: " if exc.kind else ""
        print(f"powerhub {args.command}: {kind}{exc}", file=sys.stderr)
        return exc.exit_status
    return 0

if __name__ == "__main__":
    sys.exit(main())

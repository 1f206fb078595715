"""What the hub knows of each agent: online or offline (its retained status), which devices it publishes, and the
`seq` numbers it has stored from it, from which gaps (seqs never seen) and duplicates (seen twice) follow.

An agent's `seq` increases by one per point (SPEC.md section 2), across all its series, so a hole in the seqs the hub
stored is a point that has not arrived: still in the agent's outbox or the broker, or lost. Holes can close later
(a retransmission after a restart); `missing` is the count of holes right now. Tracking starts with the first seq
the hub sees after it starts, so nothing before it counts as missing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from telemetry.metrics import Metrics
from telemetry.names import NameError_, check_name
from telemetry.payload import parse_json
from telemetry.timeunits import now_ms as time_now_ms

MAX_RUNS = 1000  # runs of consecutive seqs kept per agent; older holes beyond it are counted as lost for good
UNKNOWN_AGENT = "-"  # points of a device no agent's status has named yet


@dataclass
class SeqTracker:
    """The seqs seen, as sorted disjoint runs `[lo, hi]`: consecutive seqs cost nothing."""

    runs: list[list[int]] = field(default_factory=list)
    duplicates: int = 0
    lost_for_good: int = 0  # holes folded away when there were too many runs

    def observe(self, seq: int) -> None:
        runs = self.runs
        if not runs or seq > runs[-1][1]:  # the common case: the next seq, or a new hole at the end
            if runs and seq == runs[-1][1] + 1:
                runs[-1][1] = seq
            else:
                runs.append([seq, seq])
                self._bound()
            return
        lo, hi = 0, len(runs)
        while lo < hi:  # the first run ending at or after seq
            mid = (lo + hi) // 2
            if runs[mid][1] < seq:
                lo = mid + 1
            else:
                hi = mid
        run = runs[lo]
        if run[0] <= seq:
            self.duplicates += 1
            return
        if lo > 0 and runs[lo - 1][1] == seq - 1:
            runs[lo - 1][1] = seq
            if run[0] == seq + 1:  # the hole closed: merge
                runs[lo - 1][1] = run[1]
                del runs[lo]
        elif run[0] == seq + 1:
            run[0] = seq
        else:
            runs.insert(lo, [seq, seq])
            self._bound()

    def _bound(self) -> None:
        while len(self.runs) > MAX_RUNS:
            first, second = self.runs[0], self.runs[1]
            self.lost_for_good += second[0] - first[1] - 1
            second[0] = first[0]
            del self.runs[0]

    @property
    def missing(self) -> int:
        """Seqs between the first and the last seen that have not been seen."""
        return self.lost_for_good + sum(b[0] - a[1] - 1 for a, b in zip(self.runs, self.runs[1:], strict=False))

    @property
    def last(self) -> int | None:
        return self.runs[-1][1] if self.runs else None


@dataclass
class AgentState:
    site: str
    name: str
    online: bool | None = None  # None: no status seen
    status_ts: int | None = None
    since: int | None = None  # when the current state (online or offline) began, as well as the hub can tell
    version: str | None = None
    devices: frozenset[str] = frozenset()
    seqs: SeqTracker = field(default_factory=SeqTracker)

    def snapshot(self, count_gaps: bool = True) -> dict[str, object]:
        return {"site": self.site, "agent": self.name, "online": self.online, "status_ts": self.status_ts,
                "since": self.since,
                "version": self.version, "devices": sorted(self.devices), "last_seq": self.seqs.last,
                "gaps": self.seqs.missing if count_gaps else None, "duplicates": self.seqs.duplicates}


class AgentBook:
    def __init__(self, metrics: Metrics | None = None, count_gaps: bool = True) -> None:
        """`count_gaps` False: this hub sees only some of each agent's points (one of several hubs on a shared
        subscription), so the seqs it has not seen are not missing; gaps are reported as unknown (None)."""
        self.metrics = metrics
        self.count_gaps = count_gaps
        self._agents: dict[tuple[str, str], AgentState] = {}
        self._owner: dict[tuple[str, str], str] = {}  # (site, device) -> agent
        self._lock = threading.Lock()
        # Told of every status: (site, agent, online, since_ms), e.g. the offline alert.
        self.on_status: Callable[[str, str, bool, int | None], None] | None = None

    def _agent(self, site: str, name: str) -> AgentState:
        state = self._agents.get((site, name))
        if state is None:
            state = self._agents[(site, name)] = AgentState(site, name)
        return state

    def status(self, site: str, name: str, payload: bytes, retained: bool = False, now_ms: int | None = None) -> None:
        """A message on `{root}/status/{site}/{agent}`: raises ValueError when it is not a status.

        `retained`: the broker's stored copy, sent as the hub subscribed, so its state began at its own `ts` at the
        latest; a live one (a last will the broker publishes as the agent's connection dies) began as it came."""
        check_name("site", site)
        check_name("agent", name)
        try:
            doc = parse_json(payload)
        except ValueError as exc:
            raise ValueError(f"status is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("state") not in ("online", "offline"):
            raise ValueError('status must be an object with "state": "online" or "offline"')
        devices = doc.get("devices", [])
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise ValueError('"devices" must be a list of names')
        try:
            named = frozenset(check_name("device", d) for d in devices)
        except NameError_ as exc:
            raise ValueError(str(exc)) from None
        ts, version = doc.get("ts"), doc.get("version")
        status_ts = ts if isinstance(ts, int) and not isinstance(ts, bool) and ts > 0 else None
        with self._lock:
            state = self._agent(site, name)
            online = doc["state"] == "online"
            if online != state.online:
                state.since = status_ts if retained else (now_ms if now_ms is not None else time_now_ms())
            state.online = online
            state.status_ts = status_ts
            state.version = version if isinstance(version, str) else None
            if named:  # the last will ("offline") may carry an older list: keep the newest non-empty one
                state.devices = named
                for device in named:
                    self._owner[(site, device)] = name
        if self.metrics:
            self.metrics.set("powerhub_agent_online", 1 if state.online else 0, site=site, agent=name)
        if self.on_status:
            self.on_status(site, name, online, state.since)

    def agent_of(self, site: str, device: str) -> str | None:
        with self._lock:
            return self._owner.get((site, device))

    def observe(self, site: str, device: str, seqs: list[int]) -> None:
        """Seqs of points stored for a device: credited to the agent whose status names the device."""
        with self._lock:
            state = self._agent(site, self._owner.get((site, device), UNKNOWN_AGENT))
            before = state.seqs.duplicates
            for seq in seqs:
                state.seqs.observe(seq)
            gaps, dups = state.seqs.missing, state.seqs.duplicates - before
        if self.metrics and self.count_gaps:
            self.metrics.set("powerhub_seq_gaps", gaps, site=site, agent=state.name)
            if dups:
                self.metrics.inc("powerhub_seq_duplicates_total", dups, site=site, agent=state.name)

    def gap_counts(self) -> dict[tuple[str, str], int]:
        """Each named agent's missing seqs (the `gaps` alert's input)."""
        with self._lock:
            return {(s.site, s.name): s.seqs.missing for s in self._agents.values() if s.name != UNKNOWN_AGENT}

    def snapshot(self) -> list[dict[str, object]]:
        with self._lock:
            return [s.snapshot(self.count_gaps) for _, s in sorted(self._agents.items())]

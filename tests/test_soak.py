"""Eight processes issuing mixed commands on shared and separate deals, and
writers that meet a lock held past the lock timeout.

Every recorded event has its own occurred time (a slot per worker and
command), so the store can be checked event by event: each command's events
present exactly once, versions contiguous per deal. Some commands are
retried as a client would after a lost reply; the retry must add nothing.
DEALTRAIL_SOAK_COMMANDS sets the commands per process (CI runs a few; see
docs/security.md for the full count).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path

import orjson
import pytest

from engine.application import DealTrail
from engine.events import (
    DealOpened,
    Event,
    NextStepSet,
    StageChanged,
    StakeholderJoined,
    TouchpointCorrected,
    TouchpointLogged,
)
from engine.privacy import new_master_key
from engine.projections.deal_state import deal_state
from engine.store import parse_store_url
from tests.factories import opened, touch
from tests.harness.stores import RULES, gaps_in_versions, postgres_parts

pytestmark = pytest.mark.soak

WORKERS = 8
COMMANDS = int(os.environ.get("DEALTRAIL_SOAK_COMMANDS", "12"))
SEED = int(os.environ.get("DEALTRAIL_SOAK_SEED", "20260601"))
# Workers 0 and 1 send every CLI_EVERY-th command through the dealtrail CLI.
CLI_WORKERS = 2
CLI_EVERY = 5
SHARED = ("SHARED-1", "SHARED-2", "SHARED-3")
STAGES = ("qualification", "discovery", "demo", "proposal", "negotiation")
BASE = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
# Generous: a run that takes longer is deadlocked, and the test says so.
DEADLINE = 60.0 + COMMANDS * 1.5

# (deal, event type, occurred time in UTC): unique for every recorded event.
Key = tuple[str, str, str]


def _slot(worker: int, command: int, part: int = 0) -> datetime:
    return BASE + timedelta(minutes=(worker * COMMANDS + command) * 4 + part)


def _key(event: Event) -> Key:
    return (event.deal, event.type, event.occurred_at.astimezone(UTC).isoformat())


class _Worker:
    """One process's commands; remembers the events it recorded."""

    def __init__(self, url: str, worker: int, scratch: Path) -> None:
        self.url = url
        self.worker = worker
        self.scratch = scratch
        self.rng = random.Random(SEED * 100 + worker)
        self.app = DealTrail(url)
        self.recorded: list[Key] = []
        self.touches: list[tuple[str, str]] = []  # (deal, touchpoint)
        self.own: list[str] = []

    def run(self, commands: int) -> None:
        kinds: tuple[str, ...] = ("touch", "stage", "stakeholder", "next step")
        kinds += ("correct", "import", "open", "timeline", "deal show", "audit")
        weights = (30, 10, 8, 8, 8, 6, 4, 10, 8, 8)
        for i in range(commands):
            kind = "open" if not self.own else self.rng.choices(kinds, weights)[0]
            if kind == "correct" and not self.touches:
                kind = "touch"
            via_cli = self.worker < CLI_WORKERS and i % CLI_EVERY == 0
            getattr(self, "_" + kind.replace(" ", "_"))(i, via_cli)

    def _deal(self) -> str:
        return self.rng.choice(SHARED if self.rng.random() < 0.5 else self.own)

    def _record(self, event: Event, retry: bool = True) -> None:
        stored = self.app.record(event)
        assert stored is not None, f"{_key(event)} was refused as recorded already"
        self.recorded.append(_key(event))
        if retry and self.rng.random() < 0.2:
            # A client that lost the reply sends the command again.
            assert self.app.record(event) is None, f"{_key(event)} recorded twice"

    def _cli(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "cli", "--store", self.url, *args],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        assert done.returncode == 0, f"dealtrail {' '.join(args)}: {done.stderr}"

    def _open(self, i: int, via_cli: bool) -> None:
        deal = f"OWN-{self.worker}-{len(self.own)}"
        self._record(opened(deal, occurred_at=_slot(self.worker, i).isoformat()))
        self.own.append(deal)

    def _touch(self, i: int, via_cli: bool) -> None:
        deal, touchpoint = self._deal(), f"w{self.worker}-{i}"
        at = _slot(self.worker, i)
        if via_cli:
            self._cli(
                "log", deal, "--channel", "call", "--direction", "outbound",
                "--with", "dana@acme.example", "--id", touchpoint,
                "--at", at.isoformat(),
            )  # fmt: skip
            self.recorded.append((deal, "TouchpointLogged", at.isoformat()))
        else:
            self._record(touch(touchpoint, deal, occurred_at=at.isoformat()))
        self.touches.append((deal, touchpoint))

    def _stage(self, i: int, via_cli: bool) -> None:
        deal, name, at = self._deal(), self.rng.choice(STAGES), _slot(self.worker, i)
        if via_cli:
            self._cli("stage", deal, name, "--at", at.isoformat())
            self.recorded.append((deal, "StageChanged", at.isoformat()))
        else:
            self._record(StageChanged(deal=deal, occurred_at=at, stage=name))

    def _stakeholder(self, i: int, via_cli: bool) -> None:
        contact = f"w{self.worker}c{i}@buyer.example"
        self._record(
            StakeholderJoined(
                deal=self._deal(),
                occurred_at=_slot(self.worker, i),
                contact=contact,
                role="champion",
            )
        )

    def _next_step(self, i: int, via_cli: bool) -> None:
        at = _slot(self.worker, i)
        self._record(
            NextStepSet(
                deal=self._deal(),
                occurred_at=at,
                description=f"step {self.worker}-{i}",
                due=at.date() + timedelta(days=7),
            )
        )

    def _correct(self, i: int, via_cli: bool) -> None:
        deal, touchpoint = self.rng.choice(self.touches)
        self._record(
            TouchpointCorrected(
                deal=deal,
                occurred_at=_slot(self.worker, i),
                touchpoint=touchpoint,
                summary=f"corrected by {self.worker} at {i}",
            )
        )

    def _import(self, i: int, via_cli: bool) -> None:
        events = [
            touch(
                f"w{self.worker}-{i}-{part}",
                self._deal(),
                occurred_at=_slot(self.worker, i, part).isoformat(),
            )
            for part in range(3)
        ]
        path = self.scratch / f"w{self.worker}-{i}.jsonl"
        path.write_bytes(
            b"".join(
                orjson.dumps(e.model_dump(mode="json", exclude_none=True)) + b"\n"
                for e in events
            )
        )
        for attempt in range(2 if self.rng.random() < 0.3 else 1):
            with path.open("rb") as lines:
                result = self.app.import_native([(path.name, lines)])
            # The second attempt is a retried import: nothing new.
            assert result.total_recorded == (3 if attempt == 0 else 0)
        self.recorded += [_key(e) for e in events]
        self.touches += [(e.deal, e.touchpoint) for e in events]

    def _timeline(self, i: int, via_cli: bool) -> None:
        deal = self._deal()
        if via_cli:
            self._cli("timeline", deal, "--format", "jsonl")
        else:
            assert self.app.timeline(deal)

    def _deal_show(self, i: int, via_cli: bool) -> None:
        deal = self._deal()
        if via_cli:
            self._cli("deal", "show", deal, "--format", "json")
        else:
            self.app.analyse(deal, deal_state, rules=RULES)

    def _audit(self, i: int, via_cli: bool) -> None:
        deal = self._deal()
        if via_cli:
            self._cli("audit", deal, "--format", "json")
        else:
            self.app.audit(deal, RULES)


def _work(url: str, worker: int, scratch: str, barrier: Barrier) -> None:
    out = Path(scratch) / f"worker-{worker}.json"
    try:
        runner = _Worker(url, worker, Path(scratch))
        barrier.wait(timeout=DEADLINE)
        runner.run(COMMANDS)
        runner.app.close()
        out.write_bytes(orjson.dumps({"recorded": runner.recorded}))
    except BaseException:
        out.write_bytes(orjson.dumps({"error": traceback.format_exc()}))
        raise


def test_eight_processes_of_mixed_commands_record_each_event_exactly_once(
    store_url: str, tmp_path: Path
) -> None:
    shared = [opened(key, occurred_at="2024-12-02T09:00:00+00:00") for key in SHARED]
    with DealTrail(store_url) as app:
        for event in shared:
            app.record(event)
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(WORKERS)
    workers = [
        spawn.Process(target=_work, args=(store_url, w, str(tmp_path), barrier))
        for w in range(WORKERS)
    ]
    for p in workers:
        p.start()
    deadline = time.monotonic() + DEADLINE
    for p in workers:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [w for w, p in enumerate(workers) if p.is_alive()]
    for w in hung:
        workers[w].kill()
    assert not hung, (
        f"workers {hung} still running after {DEADLINE:.0f} s: a deadlock, "
        "or a lock never released"
    )

    expected: Counter[Key] = Counter(_key(e) for e in shared)
    for w in range(WORKERS):
        report = orjson.loads((tmp_path / f"worker-{w}.json").read_bytes())
        assert "error" not in report, f"worker {w} failed:\n{report['error']}"
        expected.update(tuple(k) for k in report["recorded"])
    assert expected.total() > WORKERS * COMMANDS // 2

    with DealTrail(store_url) as app:
        events = [r.event for r in app.stored_events()]
        stored = Counter(_key(e) for e in events)
        touchpoints = Counter(
            (e.deal, e.touchpoint) for e in events if isinstance(e, TouchpointLogged)
        )
        app.update_views(RULES)
        summaries = {s.deal for s in app.summaries(RULES).result}
    missing, doubled = expected - stored, stored - expected
    assert (missing.total(), doubled.total()) == (0, 0), (
        f"events missing, e.g. {list(missing)[:3]}; extra, e.g. {list(doubled)[:3]}"
    )
    assert set(touchpoints.values()) == {1}
    assert gaps_in_versions(store_url) == {}
    assert summaries == {e.deal for e in events if isinstance(e, DealOpened)}


@contextmanager
def _lock_held(url: str) -> Iterator[None]:
    """Another connection holds the store's write lock until the block ends."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.rollback()
            conn.close()
        return
    import psycopg
    from psycopg import sql

    base, schema = postgres_parts(url)
    with psycopg.connect(base) as pg:
        table = sql.Identifier(schema, "dealtrail_events")
        pg.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        try:
            yield
        finally:
            pg.rollback()


def _dealtrail(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--store", url, *args],
        capture_output=True,
        text=True,
        env=os.environ | env,
        timeout=120,
    )


def test_a_lock_held_past_the_timeout_fails_the_command_clearly(
    store_url: str, tmp_path: Path
) -> None:
    with DealTrail(store_url) as app:
        app.record(opened())
    lines = tmp_path / "touches.jsonl"
    event = touch("imported", occurred_at="2026-03-03T10:00:00+01:00")
    lines.write_bytes(
        orjson.dumps(event.model_dump(mode="json", exclude_none=True)) + b"\n"
    )
    commands: list[tuple[str, ...]] = [
        ("log", "ACME-1", "--id", "t0", "--channel", "email", "--direction", "inbound"),
        ("import", str(lines)),
    ]
    commands[0] += ("--at", "2026-03-02T11:00:00+01:00")
    short = {"DEALTRAIL_LOCK_TIMEOUT": "1"}
    message = (
        f"error: store {parse_store_url(store_url).display}: another writer held "
        "the lock longer than the lock timeout (1 s); try again\n"
    )
    with _lock_held(store_url):
        for args in commands:
            done = _dealtrail(store_url, *args, **short)
            assert (done.returncode, done.stderr) == (1, message), args
        done = _dealtrail(store_url, "timeline", "ACME-1", "--format", "jsonl", **short)
        # Readers are not held up by a writer's lock, on either store.
        assert (done.returncode, done.stdout.count("\n")) == (0, 1), done.stderr

    for args in commands:  # trying again, as told, works
        done = _dealtrail(store_url, *args, **short)
        assert done.returncode == 0, done.stderr
    with DealTrail(store_url) as app:
        touches = [getattr(r.event, "touchpoint", None) for r in app.history("ACME-1")]
    assert touches == [None, "t0", "imported"]


def test_key_table_writes_meet_a_held_lock_with_the_same_one_line(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(new_master_key())
    key_file.chmod(0o600)
    plain = f"{sqlite_url.removesuffix('.db')}-plain.db"
    with DealTrail(plain) as app:
        app.record(opened())
    monkeypatch.setenv("DEALTRAIL_KEY_FILE", str(key_file))
    monkeypatch.delenv("DEALTRAIL_KEY", raising=False)
    with DealTrail(sqlite_url) as app:
        app.record(opened())
        app.record(touch("t1"))
    short = {"DEALTRAIL_LOCK_TIMEOUT": "1"}
    for url, args in [
        (sqlite_url, ("forget", "dana@acme.example")),
        # The first write with a key creates the key table and its check row.
        (plain, ("init",)),
    ]:
        with _lock_held(url):
            done = _dealtrail(url, *args, **short)
        assert (done.returncode, done.stderr) == (
            1,
            f"error: store {parse_store_url(url).display}: another writer held "
            "the lock longer than the lock timeout (1 s); try again\n",
        ), args
        assert _dealtrail(url, *args, **short).returncode == 0


@pytest.mark.parametrize("value", ["soon", "0"])
def test_a_bad_lock_timeout_setting_is_a_clear_error(
    sqlite_url: str, value: str
) -> None:
    done = _dealtrail(sqlite_url, "init", DEALTRAIL_LOCK_TIMEOUT=value)
    assert (done.returncode, done.stderr) == (
        1,
        f"error: DEALTRAIL_LOCK_TIMEOUT {value!r}: write a whole number of "
        "seconds (1 or more)\n",
    )


def test_a_lock_timeout_beyond_what_postgresql_takes_is_refused(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _dealtrail(store_url, "init", DEALTRAIL_LOCK_TIMEOUT="2147484")
    assert (done.returncode, done.stderr) == (
        1,
        "error: DEALTRAIL_LOCK_TIMEOUT '2147484': at most 2147483 seconds "
        "(about 24 days)\n",
    )
    monkeypatch.setenv("DEALTRAIL_LOCK_TIMEOUT", "2147483")
    with DealTrail(store_url) as app:
        assert app.record(opened()) is not None  # the longest timeout works

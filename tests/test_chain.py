"""Tamper evidence: hash chains over the stored events and ``dealtrail verify``.

The stores are tampered with behind dealtrail's back: the SQLite file through
sqlite3, the PostgreSQL rows through psycopg.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import orjson
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine.application import DealTrail
from engine.chain import Head, genesis, link, store_digest
from engine.deal import deal_id
from engine.store import parse_store_url
from tests.conftest import Clock
from tests.factories import joined, opened, touch

FIXTURES = Path(__file__).parent / "fixtures"


def verify(store_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--store", store_url, "verify", *args], env={"DEALTRAIL_STORE": None}
    )


def run(store_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--store", store_url, *args], env={"DEALTRAIL_STORE": None}
    )


def export(store_url: str, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli, ["--store", store_url, "export", *args], env={"DEALTRAIL_STORE": None}
    )
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = orjson.loads(result.stdout)
    return document


class Raw:
    """Direct access to a store's tables, bypassing dealtrail."""

    def __init__(self, store_url: str) -> None:
        parts = urlsplit(store_url)
        self.sqlite = parts.scheme == "sqlite"
        if self.sqlite:
            self.path = parts.path[1:]
            self.events = "stored_events"
        else:
            self.base = store_url.split("?")[0]
            self.schema = parse_qs(parts.query)["schema"][0]
            self.events = "dealtrail_events"

    @property
    def notification(self) -> str:
        """The column holding the notification id (the store position)."""
        return "rowid" if self.sqlite else "notification_id"

    def id(self, key: str) -> Any:
        return deal_id(key).hex if self.sqlite else deal_id(key)

    def execute(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement (written with %s markers) and commit."""
        statement = statement.replace("{events}", self.events)
        if self.sqlite:
            with sqlite3.connect(self.path) as conn:
                return conn.execute(statement.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {self.schema}")
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def state(self, key: str, version: int) -> bytes:
        rows = self.execute(
            "SELECT state FROM {events} WHERE originator_id = %s "
            "AND originator_version = %s",
            self.id(key),
            version,
        )
        return bytes(rows[0][0])

    def set_state(self, key: str, version: int, state: bytes) -> None:
        self.execute(
            "UPDATE {events} SET state = %s WHERE originator_id = %s "
            "AND originator_version = %s",
            state,
            self.id(key),
            version,
        )

    def set_column(self, key: str, version: int, column: str, value: Any) -> None:
        self.execute(
            f"UPDATE {{events}} SET {column} = %s WHERE originator_id = %s "
            "AND originator_version = %s",
            value,
            self.id(key),
            version,
        )

    def set_version(self, key: str, version: int, new: int) -> None:
        self.execute(
            "UPDATE {events} SET originator_version = %s WHERE originator_id = %s "
            "AND originator_version = %s",
            new,
            self.id(key),
            version,
        )

    def delete(self, key: str, version: int) -> None:
        self.execute(
            "DELETE FROM {events} WHERE originator_id = %s AND originator_version = %s",
            self.id(key),
            version,
        )


# ACME-1 is imported (6 events) and then continued by a command (7th);
# BETA-2 is written by single commands only (4 events).
ACME_EVENTS = 7
BETA_EVENTS = 4


@pytest.fixture
def filled(store_url: str, clock: Clock) -> str:
    with DealTrail(store_url, clock=clock) as app:
        app.import_events(
            [
                opened(),
                joined("dana@acme.example", "champion"),
                touch("t1"),
                touch("t2", occurred_at="2026-03-03T10:00:00+01:00"),
                touch("t3", occurred_at="2026-03-04T10:00:00+01:00"),
                touch("t4", occurred_at="2026-03-05T10:00:00+01:00"),
            ]
        )
        clock.advance(minutes=5)
        app.record(touch("t5", occurred_at="2026-03-06T10:00:00+01:00"))
        for event in (
            opened("BETA-2", account="Beta"),
            joined("bo@beta.example", "champion", deal="BETA-2"),
            touch("b1", deal="BETA-2", participants=["bo@beta.example"]),
            touch("b2", deal="BETA-2", participants=["bo@beta.example"]),
        ):
            clock.advance(minutes=1)
            app.record(event)
    return store_url


def broken(result: Result) -> list[str]:
    """The broken-link lines of a verify that must have failed."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    return [line for line in result.stdout.splitlines() if line.startswith("broken:")]


def test_an_untouched_store_verifies(filled: str) -> None:
    result = verify(filled)
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    events = ACME_EVENTS + BETA_EVENTS
    assert lines[0] == f"verified 2 deals, {events} events: chains intact"
    assert lines[1].startswith(f"store: chain head at position {events}: ")
    assert lines[1].endswith(" (2 deals)")


def test_imports_and_single_commands_both_write_digests_and_heads(filled: str) -> None:
    raw = Raw(filled)
    rows = raw.execute(
        "SELECT originator_id, originator_version, digest FROM dealtrail_chain "
        "ORDER BY originator_id, originator_version"
    )
    assert len(rows) == ACME_EVENTS + BETA_EVENTS
    heads = raw.execute(
        "SELECT originator_id, version, digest FROM dealtrail_chain_heads"
    )
    assert sorted(h[1] for h in heads) == [BETA_EVENTS, ACME_EVENTS]
    # Each digest links the one before it to the stored bytes.
    for key, count in (("ACME-1", ACME_EVENTS), ("BETA-2", BETA_EVENTS)):
        previous = genesis(deal_id(key))
        for version in range(1, count + 1):
            topic, state = raw.execute(
                "SELECT topic, state FROM {events} WHERE originator_id = %s "
                "AND originator_version = %s",
                raw.id(key),
                version,
            )[0]
            previous = link(previous, version, topic, bytes(state))
            stored = raw.execute(
                "SELECT digest FROM dealtrail_chain WHERE originator_id = %s "
                "AND originator_version = %s",
                raw.id(key),
                version,
            )
            assert bytes(stored[0][0]) == previous
        (head,) = [h for h in heads if str(h[0]).replace("-", "") == deal_id(key).hex]
        assert (head[1], bytes(head[2])) == (count, previous)


def test_a_changed_payload_is_named_by_deal_and_position(filled: str) -> None:
    raw = Raw(filled)
    state = raw.state("BETA-2", 3)
    assert b"bo@beta.example" in state
    raw.set_state("BETA-2", 3, state.replace(b"bo@beta", b"no@beta"))
    assert broken(verify(filled)) == [
        "broken: BETA-2: position 3: payload or recording time changed, or an "
        "event inserted (the event does not match its digest)"
    ]


def test_a_changed_recording_time_is_named(filled: str) -> None:
    raw = Raw(filled)
    state = raw.state("ACME-1", 7)
    recorded = orjson.loads(state)["recorded_at"]
    assert isinstance(recorded, str)
    assert recorded.encode() in state
    earlier = recorded.replace("2026-06-01", "2026-05-01")
    raw.set_state("ACME-1", 7, state.replace(recorded.encode(), earlier.encode()))
    (line,) = broken(verify(filled))
    assert line.startswith("broken: ACME-1: position 7: payload or recording time")


def test_a_deleted_event_is_named(filled: str) -> None:
    Raw(filled).delete("ACME-1", 3)
    assert broken(verify(filled)) == [
        "broken: ACME-1: position 3: event missing "
        "(the next stored event is at position 4)"
    ]


def test_a_deleted_last_event_is_named_through_the_head(filled: str) -> None:
    Raw(filled).delete("BETA-2", BETA_EVENTS)
    assert broken(verify(filled)) == [
        f"broken: BETA-2: position {BETA_EVENTS}: event missing (the chain head "
        f"is at position {BETA_EVENTS}, the last event at {BETA_EVENTS - 1})"
    ]


def test_a_deal_whose_every_event_was_deleted_is_reported(filled: str) -> None:
    raw = Raw(filled)
    raw.execute("DELETE FROM {events} WHERE originator_id = %s", raw.id("BETA-2"))
    assert broken(verify(filled)) == [
        f"broken: deal id {deal_id('BETA-2').hex}: position 1: every event is "
        f"missing (its chain head is at position {BETA_EVENTS})"
    ]


def test_a_deal_deleted_with_its_head_is_reported_by_its_digests(
    filled: str,
) -> None:
    raw = Raw(filled)
    raw.execute("DELETE FROM {events} WHERE originator_id = %s", raw.id("BETA-2"))
    raw.execute(
        "DELETE FROM dealtrail_chain_heads WHERE originator_id = %s", raw.id("BETA-2")
    )
    assert broken(verify(filled)) == [
        f"broken: deal id {deal_id('BETA-2').hex}: position 1: every event is "
        f"missing (its digests are still stored, up to position {BETA_EVENTS})"
    ]


def test_chained_events_renumbered_below_1_do_not_pass_as_unchained(
    filled: str,
) -> None:
    """Ids at or below the chaining start pass as unchained; the store's ids
    start at 1, so moving a deal's events below 1 must not make them so."""
    raw = Raw(filled)
    column = "rowid" if raw.sqlite else "notification_id"
    deal = raw.id("BETA-2")
    raw.execute(
        f"UPDATE {{events}} SET {column} = -{column} WHERE originator_id = %s", deal
    )
    for table in ("dealtrail_chain", "dealtrail_chain_heads"):
        raw.execute(f"DELETE FROM {table} WHERE originator_id = %s", deal)
    raw.set_state("BETA-2", 2, raw.state("BETA-2", 2).replace(b"champion", b"blocker"))
    (line,) = broken(verify(filled))
    assert line.startswith("broken: BETA-2: position 1: notification id -")
    assert line.endswith("is below 1 (renumbered outside dealtrail)")


def test_swapped_events_are_named_as_reordered(filled: str) -> None:
    raw = Raw(filled)
    raw.set_version("ACME-1", 4, -1)
    raw.set_version("ACME-1", 5, 4)
    raw.set_version("ACME-1", -1, 5)
    assert broken(verify(filled)) == [
        "broken: ACME-1: position 4: event reordered (it was recorded at position 5)"
    ]


def test_an_inserted_event_is_named(filled: str) -> None:
    raw = Raw(filled)
    raw.execute(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)",
        raw.id("BETA-2"),
        BETA_EVENTS + 1,
        "TouchpointLogged",
        raw.state("BETA-2", BETA_EVENTS).replace(b"b2", b"b9"),
    )
    assert broken(verify(filled)) == [
        f"broken: BETA-2: position {BETA_EVENTS + 1}: digest missing (an event "
        "was inserted, or its digest deleted, outside dealtrail)"
    ]


def test_a_deleted_digest_is_named(filled: str) -> None:
    raw = Raw(filled)
    raw.execute(
        "DELETE FROM dealtrail_chain WHERE originator_id = %s "
        "AND originator_version = 2",
        raw.id("ACME-1"),
    )
    (line,) = broken(verify(filled))
    assert line.startswith("broken: ACME-1: position 2: digest missing")


def test_a_payload_set_to_null_is_named(filled: str) -> None:
    Raw(filled).set_column("ACME-1", 3, "state", None)
    assert broken(verify(filled)) == [
        "broken: ACME-1: position 3: payload missing (the stored state is NULL)"
    ]


def test_a_topic_set_to_null_is_named(filled: str) -> None:
    Raw(filled).set_column("BETA-2", 2, "topic", None)
    (line,) = broken(verify(filled))
    assert line.startswith("broken: BETA-2: position 2: payload or recording time")


@pytest.mark.parametrize("state", [b"{garbage", None], ids=["not-json", "null"])
def test_an_undecodable_event_fails_reads_in_one_line(
    filled: str, state: bytes | None
) -> None:
    """Reading a deal whose stored event no longer decodes names the event
    and points to verify, instead of a traceback."""
    Raw(filled).set_column("ACME-1", 3, "state", state)
    expected = (
        f"error: store {parse_store_url(filled).display}: the stored event at "
        "position 3 of deal 'ACME-1' cannot be decoded (damaged or changed "
        "outside dealtrail); run: dealtrail verify\n"
    )
    # deal list builds the views here: its own read of every event.
    for args in (["timeline", "ACME-1"], ["deal", "show", "ACME-1"], ["deal", "list"]):
        result = run(filled, *args)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", expected)
    assert broken(verify(filled))[0].startswith("broken: ACME-1: position 3: ")


def test_an_undecodable_event_after_the_views_fails_deal_list_in_one_line(
    filled: str, clock: Clock
) -> None:
    assert run(filled, "deal", "list").exit_code == 0
    with DealTrail(filled, clock=clock) as app:
        app.record(touch("b3", deal="BETA-2", participants=["bo@beta.example"]))
    Raw(filled).set_column("BETA-2", BETA_EVENTS + 1, "state", b"{garbage")
    result = run(filled, "deal", "list")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: store {parse_store_url(filled).display}: the stored event at "
        f"position {BETA_EVENTS + 1} of deal id {deal_id('BETA-2').hex} cannot be "
        "decoded (damaged or changed outside dealtrail); run: dealtrail verify\n",
    )


def test_an_undecodable_event_fails_whole_store_reads_in_one_line(
    filled: str, tmp_path: Path
) -> None:
    assert run(filled, "deal", "list").exit_code == 0
    # The deal's opening: the backtest reads every opening.
    Raw(filled).set_column("BETA-2", 1, "state", b"{garbage")
    expected = (
        f"error: store {parse_store_url(filled).display}: the stored event at "
        f"position 1 of deal id {deal_id('BETA-2').hex} cannot be decoded "
        "(damaged or changed outside dealtrail); run: dealtrail verify\n"
    )
    out = tmp_path / "events.json"
    for args in (["export", "events", "--out", str(out)], ["backtest"]):
        result = run(filled, *args)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", expected)
    assert not out.exists()


def test_an_event_copied_under_another_deal_id_is_named_by_that_id(
    filled: str,
) -> None:
    """The copy names ACME-1, whose own chain is intact: verify names the id
    it is stored under."""
    raw = Raw(filled)
    other = uuid4()
    raw.execute(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "SELECT %s, originator_version, topic, state FROM {events} "
        "WHERE originator_id = %s AND originator_version = 1",
        other.hex if raw.sqlite else other,
        raw.id("ACME-1"),
    )
    assert broken(verify(filled)) == [
        f"broken: deal id {other.hex}: position 1: event of deal 'ACME-1' stored "
        "under this deal's id (inserted or moved outside dealtrail)"
    ]


def test_an_event_moved_to_another_deal_is_named_in_both(filled: str) -> None:
    raw = Raw(filled)
    raw.execute(
        "UPDATE {events} SET originator_id = %s, originator_version = %s "
        "WHERE originator_id = %s AND originator_version = %s",
        raw.id("ACME-1"),
        ACME_EVENTS + 1,
        raw.id("BETA-2"),
        BETA_EVENTS,
    )
    assert broken(verify(filled)) == [
        f"broken: ACME-1: position {ACME_EVENTS + 1}: event of deal 'BETA-2' "
        "stored under this deal's id (inserted or moved outside dealtrail)",
        f"broken: BETA-2: position {BETA_EVENTS}: event missing (the chain head "
        f"is at position {BETA_EVENTS}, the last event at {BETA_EVENTS - 1})",
    ]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_event_stored_under_an_id_that_is_no_deal_id_is_named(
    filled: str,
) -> None:
    """SQLite's text column takes any id: verify names it, without a traceback."""
    raw = Raw(filled)
    raw.execute(
        "UPDATE {events} SET originator_id = 'x\ny' WHERE originator_id = %s",
        raw.id("BETA-2"),
    )
    raw.execute(
        "UPDATE dealtrail_chain SET originator_id = 'x\ny' WHERE originator_id = %s",
        raw.id("BETA-2"),
    )
    assert broken(verify(filled)) == [
        "broken: deal id 'x\\ny': position 1: not a deal id (events stored "
        "outside dealtrail)",
        f"broken: deal id {deal_id('BETA-2').hex}: position 1: every event is "
        f"missing (its chain head is at position {BETA_EVENTS})",
    ]


def test_an_event_renumbered_past_a_later_one_of_its_deal_is_named(
    filled: str,
) -> None:
    """The chain covers each event's position in its deal, not its
    notification id; a deal's ids must still follow its positions."""
    raw = Raw(filled)
    ((sixth,),) = raw.execute(
        f"SELECT {raw.notification} FROM {{events}} WHERE originator_id = %s "
        "AND originator_version = 6",
        raw.id("ACME-1"),
    )
    raw.set_column("ACME-1", 5, raw.notification, 1000)
    assert broken(verify(filled)) == [
        f"broken: ACME-1: position 6: notification id {sixth} is below the "
        "previous event's, 1000 (renumbered outside dealtrail)"
    ]


def test_a_last_event_renumbered_upward_is_caught_by_the_head_an_export_kept(
    filled: str,
) -> None:
    """The limit (docs/security.md): a deal's last event renumbered upward
    keeps its deal's order and passes verify, but the store's head at an
    earlier export's position no longer includes it."""
    kept = export(filled, "gaps")
    raw = Raw(filled)
    raw.set_column("BETA-2", BETA_EVENTS, raw.notification, 1000)
    assert verify(filled).exit_code == 0
    at = verify(filled, "--at", str(kept["position"]))
    assert at.exit_code == 0
    assert at.stdout.splitlines()[-1].startswith(
        f"store: chain head at position {kept['position']}: "
    )
    assert kept["chain"]["digest"] not in at.stdout


def test_a_chain_rewritten_without_its_head_is_caught_by_the_head(filled: str) -> None:
    """Recomputing one deal's digests after an edit still leaves its head."""
    raw = Raw(filled)
    state = raw.state("BETA-2", 2).replace(b"champion", b"blocker")
    raw.set_state("BETA-2", 2, state)
    previous = genesis(deal_id("BETA-2"))
    for version in range(1, BETA_EVENTS + 1):
        topic, stored = raw.execute(
            "SELECT topic, state FROM {events} WHERE originator_id = %s "
            "AND originator_version = %s",
            raw.id("BETA-2"),
            version,
        )[0]
        previous = link(previous, version, topic, bytes(stored))
        raw.execute(
            "UPDATE dealtrail_chain SET digest = %s WHERE originator_id = %s "
            "AND originator_version = %s",
            previous,
            raw.id("BETA-2"),
            version,
        )
    assert broken(verify(filled)) == [
        f"broken: BETA-2: position {BETA_EVENTS}: chain head does not match "
        "the last event's digest"
    ]


def test_a_consistent_rewrite_is_caught_by_the_head_an_export_kept(
    filled: str,
) -> None:
    """The limit, and what lifts it: rewriting digests and head together
    passes verify, but no longer gives the head an earlier export carries."""
    kept = export(filled, "events", "--deal", "BETA-2")["chain"]
    raw = Raw(filled)
    raw.set_state("BETA-2", 3, raw.state("BETA-2", 3).replace(b"call", b"demo"))
    previous = genesis(deal_id("BETA-2"))
    for version in range(1, BETA_EVENTS + 1):
        topic, stored = raw.execute(
            "SELECT topic, state FROM {events} WHERE originator_id = %s "
            "AND originator_version = %s",
            raw.id("BETA-2"),
            version,
        )[0]
        previous = link(previous, version, topic, bytes(stored))
        raw.execute(
            "UPDATE dealtrail_chain SET digest = %s WHERE originator_id = %s "
            "AND originator_version = %s",
            previous,
            raw.id("BETA-2"),
            version,
        )
    raw.execute(
        "UPDATE dealtrail_chain_heads SET digest = %s WHERE originator_id = %s",
        previous,
        raw.id("BETA-2"),
    )
    result = verify(filled, "--deal", "BETA-2")
    assert result.exit_code == 0
    assert kept["digest"] not in result.stdout
    assert previous.hex() in result.stdout


def test_only_the_tampered_deals_are_reported_each_at_its_first_break(
    filled: str,
) -> None:
    raw = Raw(filled)
    raw.delete("ACME-1", 6)
    raw.set_state("ACME-1", 2, raw.state("ACME-1", 2) + b" ")
    raw.set_state("BETA-2", 1, raw.state("BETA-2", 1) + b" ")
    lines = broken(verify(filled))
    assert [line.split(": ")[1:3] for line in lines] == [
        ["ACME-1", "position 2"],
        ["BETA-2", "position 1"],
    ]


def test_exports_carry_the_head_verify_prints(filled: str, clock: Clock) -> None:
    one = export(filled, "events", "--deal", "ACME-1")
    whole = export(filled, "gaps")
    position = ACME_EVENTS + BETA_EVENTS
    assert one["position"] == whole["position"] == position
    assert one["chain"]["deal"] == "ACME-1"
    assert one["chain"]["version"] == ACME_EVENTS
    assert whole["chain"]["deals"] == 2
    deal_line = verify(filled, "--deal", "ACME-1").stdout.splitlines()[-1]
    assert deal_line == (
        f"deal ACME-1: chain head at position {position}: "
        f"version {ACME_EVENTS}, {one['chain']['digest']}"
    )
    store_line = verify(filled).stdout.splitlines()[-1]
    assert store_line == (
        f"store: chain head at position {position}: {whole['chain']['digest']} "
        "(2 deals)"
    )
    # The store moves on; the head at the export's position stays checkable.
    with DealTrail(filled, clock=clock) as app:
        app.record(touch("t6", occurred_at="2026-03-07T10:00:00+01:00"))
    assert export(filled, "gaps")["chain"]["digest"] != whole["chain"]["digest"]
    at = verify(filled, "--at", str(position))
    assert at.stdout.splitlines()[-1] == store_line
    at_deal = verify(filled, "--deal", "ACME-1", "--at", str(position))
    assert at_deal.stdout.splitlines()[-1] == deal_line


def test_the_store_head_covers_every_deal_head_in_deal_id_order(filled: str) -> None:
    raw = Raw(filled)
    heads = raw.execute(
        "SELECT originator_id, version, digest FROM dealtrail_chain_heads"
    )
    expected = store_digest(
        sorted((str(h[0]).replace("-", ""), Head(h[1], bytes(h[2]))) for h in heads)
    )
    assert export(filled, "deals")["chain"] == {
        "deals": 2,
        "digest": expected[1].hex(),
    }


def test_a_re_import_adds_nothing_and_keeps_the_chain(
    store_url: str, clock: Clock, tmp_path: Path
) -> None:
    lines = [
        opened().model_dump_json(exclude_none=True),
        touch("t1").model_dump_json(exclude_none=True),
    ]
    with DealTrail(store_url, clock=clock) as app:
        app.import_native([("a.jsonl", [line.encode() for line in lines])])
        first = app.chain_head("ACME-1")
        clock.advance(hours=1)
        result = app.import_native([("a.jsonl", [line.encode() for line in lines])])
        assert result.total_recorded == 0
        assert app.chain_head("ACME-1") == first
        assert first is not None
    assert verify(store_url).exit_code == 0


def test_a_refused_import_leaves_no_digests(store_url: str, clock: Clock) -> None:
    from engine.errors import ImportRefused

    with DealTrail(store_url, clock=clock) as app, pytest.raises(ImportRefused):
        # A touchpoint on a deal never opened is refused: nothing lands.
        app.import_events([opened(), touch("t1", deal="NOPE-1")])
    raw = Raw(store_url)
    assert raw.execute("SELECT count(*) FROM dealtrail_chain") == [(0,)]
    assert raw.execute("SELECT count(*) FROM dealtrail_chain_heads") == [(0,)]


def test_concurrent_writers_keep_every_chain_intact(
    store_url: str, clock: Clock
) -> None:
    with DealTrail(store_url, clock=clock) as app:
        app.record(opened("SHARED-1"))
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            with DealTrail(store_url, clock=clock) as app:
                app.record(opened(f"OWN-{index}"))
                for n in range(5):
                    app.record(touch(f"s{index}-{n}", deal="SHARED-1"))
                    app.record(touch(f"o{index}-{n}", deal=f"OWN-{index}"))
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    result = verify(store_url)
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("verified 5 deals, 45 events: chains intact\n")


def test_the_v1_fixture_store_is_unchained_not_broken(tmp_path: Path) -> None:
    copy = tmp_path / "store-v1.db"
    shutil.copy(FIXTURES / "store-v1.db", copy)
    url = f"sqlite:///{copy}"
    result = verify(url)
    assert result.exit_code == 0, result.stdout
    assert result.stdout == (
        "verified 1 deal, 22 events: unchained; 22 events of 1 deal predate "
        "chaining and are unchained\n"
    )


def test_a_pre_chain_deal_continued_later_is_chained_from_its_new_events(
    tmp_path: Path, clock: Clock
) -> None:
    copy = tmp_path / "store-v1.db"
    shutil.copy(FIXTURES / "store-v1.db", copy)
    url = f"sqlite:///{copy}"
    clock.advance(days=400)
    with DealTrail(url, clock=clock) as app:
        app.record(touch("late-1", deal="FIX-1", occurred_at="2027-01-01T10:00:00Z"))
    result = verify(url, "--deal", "FIX-1")
    assert result.exit_code == 0, result.stdout
    new = Raw(url).state("FIX-1", 23)
    digest = link(genesis(deal_id("FIX-1")), 23, "TouchpointLogged", new)
    assert result.stdout.splitlines() == [
        "verified 1 deal, 23 events: chains intact; 22 events of 1 deal "
        "predate chaining and are unchained",
        f"deal FIX-1: chain head at position 23: version 23, {digest.hex()}",
    ]
    # The new event is protected: its digest may not simply disappear.
    raw = Raw(url)
    raw.execute("DELETE FROM dealtrail_chain")
    raw.execute("DELETE FROM dealtrail_chain_heads")
    assert broken(verify(url)) == [
        "broken: FIX-1: position 23: digest missing (an event was inserted, or "
        "its digest deleted, outside dealtrail)"
    ]


def test_verify_names_an_unknown_deal_and_a_position_beyond_the_head(
    filled: str,
) -> None:
    unknown = verify(filled, "--deal", "NOPE-9")
    assert unknown.exit_code == 1
    assert unknown.stdout == ""
    assert "NOPE-9" in unknown.stderr
    assert unknown.stderr.count("\n") == 1
    beyond = verify(filled, "--at", "999")
    assert beyond.exit_code == 1
    assert beyond.stderr == (
        f"error: --at 999: the store's head is at position "
        f"{ACME_EVENTS + BETA_EVENTS}\n"
    )

"""Personal data: encryption at rest and ``forget`` (crypto-shredding)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from cli.main import cli
from engine.application import DealTrail
from engine.errors import InputError, StoreError
from engine.events import TouchpointCorrected, normalise_contact
from engine.privacy import TABLE, forget, new_master_key
from engine.rules import load_rules
from tests.conftest import Clock

FIXTURE = Path(__file__).parent / "fixtures" / "every-event.jsonl"
GRETA = "greta.lang@fixture.example"
OTTO = "003FIXCEO"
# Greta's personal data in the fixture, and text of touchpoints she was on.
GRETA_TEXT = [
    GRETA,
    "Greta Lang",
    "Head of Operations",
    "Kick-off: three action items agreed.",
    "Questions on data residency.",
    "Moved to another company",
]
OTTO_TEXT = [
    "Otto Brandt",
    "Cut order-to-cash time by 20% this year",
    "Board meets on 27 Feb.",
]
# Deal-level text tied to nobody: encrypted at rest, never erased.
DEAL_TEXT = ["Walk the CFO through the proposal", "Logged on the wrong deal."]
RUNNER = CliRunner()


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    value = new_master_key()
    monkeypatch.setenv("DEALTRAIL_KEY", value)
    monkeypatch.delenv("DEALTRAIL_KEY_FILE", raising=False)
    return value


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEALTRAIL_KEY", raising=False)
    monkeypatch.delenv("DEALTRAIL_KEY_FILE", raising=False)


def run(store: str, *args: str, env: Mapping[str, str | None] | None = None) -> Result:
    return RUNNER.invoke(
        cli,
        ["--store", store, *args],
        env={"DEALTRAIL_STORE": None, "DEALTRAIL_RULES": None, **(env or {})},
        catch_exceptions=False,
    )


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def imported(store: str, clock: Clock) -> DealTrail:
    app = DealTrail(store, clock=clock)
    with FIXTURE.open("rb") as lines:
        app.import_native([(FIXTURE.name, lines)])
    return app


def stored_bytes(store: str) -> bytes:
    """Everything the store holds on disk (SQLite) or in its tables (PostgreSQL)."""
    if store.startswith("sqlite"):
        path = Path(store.removeprefix("sqlite:///"))
        files = [path, Path(f"{path}-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    base, _, schema = store.partition("?schema=")
    chunks = []
    with psycopg.connect(base) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        for (table,) in tables:
            name = sql.Identifier(schema, table)
            rows = conn.execute(sql.SQL("SELECT * FROM {}").format(name)).fetchall()
            chunks += [repr(row).encode() for row in rows]
            chunks += [v for row in rows for v in row if isinstance(v, bytes)]
    return b"\n".join(chunks)


def events_of(app: DealTrail) -> list[dict[str, Any]]:
    return [r.event.model_dump(mode="json") for r in app.history("FIX-1")]


# Encryption at rest


@pytest.mark.usefixtures("key")
def test_with_the_key_the_history_reads_exactly_as_a_plain_store_does(
    store_url: str, sqlite_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with imported(store_url, clock) as sealed:
        assert sealed.event_mapper.privacy is not None
        got = sealed.history("FIX-1")
        # Re-importing the same facts is a no-op: fingerprints survive.
        with FIXTURE.open("rb") as lines:
            again = sealed.import_native([(FIXTURE.name, lines)])
        assert (again.total_recorded, again.unchanged) == (0, len(got))
    monkeypatch.delenv("DEALTRAIL_KEY")
    plain_url = sqlite_url.replace("dealtrail.db", "plain.db")
    with imported(plain_url, clock) as plain:
        assert plain.event_mapper.privacy is None
        assert [r.event for r in got] == [r.event for r in plain.history("FIX-1")]


def test_the_stored_bytes_hold_no_personal_plaintext(
    store_url: str, sqlite_url: str, clock: Clock, key: str
) -> None:
    imported(store_url, clock).close()
    sealed = stored_bytes(store_url)
    assert b"FIX-1" in sealed
    assert b"Initech" in sealed
    for text in [*GRETA_TEXT, *OTTO_TEXT, *DEAL_TEXT]:
        assert text.encode() not in sealed, text
    # The same import without a key stores every one of them.
    os.environ.pop("DEALTRAIL_KEY")
    plain_url = sqlite_url.replace("dealtrail.db", "plain.db")
    imported(plain_url, clock).close()
    plain = stored_bytes(plain_url)
    for text in [*GRETA_TEXT, *OTTO_TEXT, *DEAL_TEXT]:
        assert text.encode() in plain, text


@pytest.mark.usefixtures("no_key")
def test_without_a_key_events_are_stored_as_their_own_json(
    sqlite_url: str, clock: Clock
) -> None:
    with imported(sqlite_url, clock) as app:
        stored = list(app.recorder.select_notifications(start=1, limit=100))
        for n in stored:
            event = app.event_mapper.decode(n.topic, n.state)
            assert n.state == event.__pydantic_serializer__.to_json(
                event, exclude_none=True
            )
        assert not app.event_mapper.privacy
    assert TABLE.encode() not in stored_bytes(sqlite_url)


@pytest.mark.usefixtures("key")
def test_a_dry_run_stores_no_contact_key(sqlite_url: str, tmp_path: Path) -> None:
    ok(run(sqlite_url, "init"))
    before = _key_rows(sqlite_url)
    ok(run(sqlite_url, "import", "--dry-run", str(FIXTURE)))
    assert _key_rows(sqlite_url) == before == 1  # only the master key check
    ok(run(sqlite_url, "import", str(FIXTURE)))
    assert _key_rows(sqlite_url) == 4  # the check, Greta, Otto, someone@else


# Keys: missing, wrong, malformed


def test_an_encrypted_store_without_its_key_is_refused_in_one_line(
    sqlite_url: str, key: str
) -> None:
    ok(run(sqlite_url, "import", str(FIXTURE)))
    unset = {"DEALTRAIL_KEY": None}
    line = one_line_error(run(sqlite_url, "timeline", "FIX-1", env=unset))
    assert line == (
        f"error: store {sqlite_url} is encrypted; set DEALTRAIL_KEY or "
        "DEALTRAIL_KEY_FILE to its key"
    )
    other = {"DEALTRAIL_KEY": new_master_key()}
    line = one_line_error(run(sqlite_url, "timeline", "FIX-1", env=other))
    assert "is encrypted with another key" in line
    # Nor may plain events be added to it.
    line = one_line_error(run(sqlite_url, "import", str(FIXTURE), env=unset))
    assert "is encrypted" in line


@pytest.mark.usefixtures("no_key")
def test_reading_a_plain_store_with_a_key_set_leaves_it_plain(sqlite_url: str) -> None:
    ok(run(sqlite_url, "import", str(FIXTURE)))
    key = {"DEALTRAIL_KEY": new_master_key()}
    for command in (
        ["timeline", "FIX-1"],
        ["deal", "list"],
        ["verify"],
        ["export", "events"],
        ["import", "--dry-run", str(FIXTURE)],
        ["forget", GRETA],
    ):
        result = run(sqlite_url, *command, env=key)
        assert result.exit_code == 0, (command, result.stderr)
    assert _key_rows(sqlite_url) is None
    # Still plain: no key needed.
    ok(run(sqlite_url, "timeline", "FIX-1"))
    # The first write with a key turns encryption on.
    ok(
        run(
            sqlite_url,
            *["log", "FIX-1", "--channel", "email", "--direction", "outbound"],
            *["--with", GRETA, "--at", "2026-03-02T10:00:00+01:00"],
            env=key,
        )
    )
    assert _key_rows(sqlite_url) == 2
    line = one_line_error(run(sqlite_url, "timeline", "FIX-1"))
    assert line.endswith(
        "is encrypted; set DEALTRAIL_KEY or DEALTRAIL_KEY_FILE to its key"
    )


def _key_rows(store: str) -> int | None:
    """Rows of the key table, or None when there is none."""
    with closing(sqlite3.connect(store.removeprefix("sqlite:///"))) as db:
        try:
            (count,) = db.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
        except sqlite3.OperationalError:
            return None
    return int(count)


@pytest.mark.usefixtures("no_key")
def test_a_key_file_works_and_bad_keys_are_refused_in_one_line(
    sqlite_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(new_master_key() + "\n")
    with_file = {"DEALTRAIL_KEY_FILE": str(key_file)}
    ok(run(sqlite_url, "import", str(FIXTURE), env=with_file))
    assert GRETA.encode() not in stored_bytes(sqlite_url)
    assert "Greta Lang" in ok(run(sqlite_url, "timeline", "FIX-1", env=with_file))
    for env, expected in [
        ({"DEALTRAIL_KEY": "c2hvcnQ="}, "DEALTRAIL_KEY: a key is base64 of 32"),
        ({"DEALTRAIL_KEY": "not base64!"}, "DEALTRAIL_KEY: a key is base64 of 32"),
        (
            {"DEALTRAIL_KEY_FILE": str(tmp_path / "missing")},
            f"DEALTRAIL_KEY_FILE: cannot read {tmp_path / 'missing'}",
        ),
        (
            {"DEALTRAIL_KEY": new_master_key(), **with_file},
            "set DEALTRAIL_KEY or DEALTRAIL_KEY_FILE, not both",
        ),
    ]:
        line = one_line_error(run(sqlite_url, "timeline", "FIX-1", env=env))
        assert line.startswith(f"error: {expected}"), line


@pytest.mark.usefixtures("no_key")
def test_a_key_file_others_can_read_is_used_with_a_warning(
    sqlite_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(new_master_key() + "\n")
    key_file.chmod(0o644)
    with_file = {"DEALTRAIL_KEY_FILE": str(key_file)}
    warning = (
        f"warning: key file {key_file} is readable by others (mode 644); "
        f"run: chmod 600 {key_file}\n"
    )
    # Every command that loads the key warns once, then does its work.
    result = run(sqlite_url, "import", str(FIXTURE), env=with_file)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(warning)
    assert result.stderr.count("warning:") == 1
    result = run(sqlite_url, "timeline", "FIX-1", env=with_file)
    assert result.exit_code == 0
    assert "Greta Lang" in result.stdout
    assert result.stderr == warning
    dry = run(
        f"{sqlite_url.removesuffix('.db')}-new.db",
        "import", "--dry-run", str(FIXTURE),
        env=with_file,
    )  # fmt: skip
    assert dry.exit_code == 0, dry.stderr
    assert dry.stderr.startswith(warning)
    assert dry.stderr.count("warning:") == 1
    key_file.chmod(0o600)
    assert run(sqlite_url, "timeline", "FIX-1", env=with_file).stderr == ""


# Forget


def _summary_correction(app: DealTrail) -> None:
    """Greta's touch fix-t2 gets a new summary naming her; it is hers too."""
    app.record(
        TouchpointCorrected.model_validate(
            {
                "deal": "FIX-1",
                "occurred_at": "2026-02-07T09:00:00+01:00",
                "touchpoint": "fix-t2",
                "summary": "Greta Lang asked again about data residency.",
            }
        )
    )


@pytest.mark.usefixtures("key")
def test_forget_erases_one_contact_everywhere_and_keeps_the_shape(
    store_url: str, clock: Clock
) -> None:
    imported(store_url, clock).close()
    with DealTrail(store_url, clock=clock) as app:
        _summary_correction(app)
        before = events_of(app)
    outputs = {}
    for name, args in _views().items():
        outputs[name] = ok(run(store_url, *args))
        assert GRETA in outputs[name] or name in ("audit", "gaps"), name

    out = ok(run(store_url, "forget", "Greta.Lang@Fixture.example"))
    assert out.startswith(f"forgot {GRETA}: 7 events now read as erased-")
    pseudonym = out.split(" as ")[1].split(";")[0]

    with DealTrail(store_url, clock=clock) as app:
        after = events_of(app)
    # The shape survives: same events, times, channels, directions, roles.
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        for field in ("type", "occurred_at", "recorded_at", "channel", "direction"):
            assert old.get(field) == new.get(field)
        assert old.get("role") == new.get("role")
        swap = {GRETA: pseudonym}
        assert sorted(swap.get(c, c) for c in old.get("participants") or []) == (
            new.get("participants") or []
        )
        if old.get("contact") == GRETA:
            assert new["contact"] == pseudonym
    everything = orjson.dumps(after).decode()
    for name, args in _views().items():
        text = ok(run(store_url, *args))
        everything += text
        assert outputs[name].count(GRETA) == text.count(pseudonym), name
    for text in [*GRETA_TEXT, "Greta Lang asked again"]:
        assert text not in everything, text
    for text in [*OTTO_TEXT, OTTO, "someone@else.example", *DEAL_TEXT]:
        assert text in everything, text
    assert "[erased]" in everything


def _views() -> dict[str, tuple[str, ...]]:
    return {
        "timeline": ("timeline", "FIX-1", "--format", "json"),
        "stakeholders": ("stakeholders", "FIX-1", "--format", "json"),
        "gaps": ("gaps", "FIX-1", "--format", "json"),
        "audit": ("audit", "FIX-1", "--format", "json"),
        "export": ("export", "events", "--deal", "FIX-1"),
        "jsonl": ("timeline", "FIX-1", "--format", "jsonl"),
    }


@pytest.mark.usefixtures("key")
def test_forget_is_idempotent_and_touches_no_one_else(sqlite_url: str) -> None:
    ok(run(sqlite_url, "import", str(FIXTURE)))
    ok(run(sqlite_url, "forget", OTTO))
    first = ok(run(sqlite_url, "timeline", "FIX-1", "--format", "json"))
    again = ok(run(sqlite_url, "forget", OTTO))
    assert again.startswith(f"{OTTO}: no key to destroy")
    assert ok(run(sqlite_url, "timeline", "FIX-1", "--format", "json")) == first
    assert "Otto Brandt" not in first
    assert "Kick-off" not in first
    assert GRETA in first
    assert "Greta Lang" in first
    assert "Questions on data residency." in first


@pytest.mark.usefixtures("key")
def test_forget_rebuilds_the_views(sqlite_url: str, clock: Clock) -> None:
    with imported(sqlite_url, clock) as app:
        rules = load_rules(None)
        app.update_views(rules)
        # A derived copy that still holds a name, as a stale view would.
        with app.views.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
            cursor.execute(
                "UPDATE deal_summaries SET document = CAST(replace(CAST(document "
                'AS TEXT), \'"name":"Fixture deal"\', \'"name":"Greta Lang"\') '
                "AS BLOB)"
            )
        assert "Greta Lang" in _deal_names(app, rules)
    ok(run(sqlite_url, "forget", GRETA))
    with DealTrail(sqlite_url, clock=clock) as app:
        assert _deal_names(app, load_rules(None)) == ["Fixture deal"]


def _on_disk(store: str) -> bytes:
    """The SQLite files, or the key table's file as PostgreSQL wrote it."""
    if store.startswith("sqlite"):
        return stored_bytes(store)
    base, _, schema = store.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        try:
            conn.execute("CHECKPOINT")
            row = conn.execute(
                "SELECT pg_read_binary_file(pg_relation_filepath(%s))",
                (f"{schema}.{TABLE}",),
            ).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            pytest.skip("reading a table's file needs a PostgreSQL superuser")
    assert row is not None
    return bytes(row[0])


@pytest.mark.usefixtures("key")
def test_forget_leaves_no_copy_of_the_key_on_disk(store_url: str, clock: Clock) -> None:
    with imported(store_url, clock) as app:
        privacy = app.event_mapper.privacy
        assert privacy is not None
        ref = privacy.ref(GRETA)
        wrapped = privacy.table.by_refs([ref])[ref][1]
        assert wrapped in _on_disk(store_url)
        forget(app, GRETA, load_rules(None))
        # Read with the store still open: SQLite's -wal is not yet folded in.
        assert wrapped not in _on_disk(store_url)
        assert privacy.table.by_refs([ref]) == {}


def _keys_newest_first(store: str) -> list[tuple[str, bytes]]:
    """(contact_ref, wrapped key) rows, the row written last first: it sits
    lowest in its page, where removing it leaves free space, not a gap that
    the other rows close up."""
    if store.startswith("sqlite"):
        with closing(sqlite3.connect(store.removeprefix("sqlite:///"))) as conn:
            query = f"SELECT contact_ref, wrapped_key FROM {TABLE} ORDER BY rowid DESC"
            return [(r, bytes(w)) for r, w in conn.execute(query)]
    base, _, schema = store.partition("?schema=")
    with psycopg.connect(base) as pg:
        newest = sql.SQL("SELECT contact_ref, wrapped_key FROM {} ORDER BY ctid DESC")
        rows = pg.execute(newest.format(sql.Identifier(schema, TABLE))).fetchall()
    return [(r, bytes(w)) for r, w in rows]


def _fixture_contacts() -> set[str]:
    found: set[str] = set()
    for line in FIXTURE.read_bytes().splitlines():
        event = orjson.loads(line)
        found.update(c for c in [event.get("contact"), event.get("by")] if c)
        found.update(event.get("participants", []))
    return {normalise_contact(c) for c in found}


@pytest.mark.usefixtures("key")
def test_forget_scrubs_each_key_wherever_it_lies_in_the_file(
    store_url: str, clock: Clock
) -> None:
    # A plain VACUUM would leave the newest row's bytes in its page.
    with imported(store_url, clock) as app:
        privacy = app.event_mapper.privacy
        assert privacy is not None
        by_ref = {privacy.ref(c): c for c in _fixture_contacts()}
        # One more row holds a check value that tells a wrong master key.
        rows = [(r, w) for r, w in _keys_newest_first(store_url) if r in by_ref]
        assert len(rows) == len(by_ref) >= 2
        for ref, wrapped in rows:
            assert wrapped in _on_disk(store_url)
            done = forget(app, by_ref[ref], load_rules(None))
            assert done.scrubbed
            assert wrapped not in _on_disk(store_url)
        assert [r for r, _ in _keys_newest_first(store_url)] == ["-"]


@contextmanager
def _older_reader(store: str, reads_keys: bool = True) -> Iterator[None]:
    """A session whose snapshot began before what follows, and still sees it;
    reading the key table, it also holds a lock that a rewrite waits for."""
    if store.startswith("sqlite"):
        with closing(sqlite3.connect(store.removeprefix("sqlite:///"))) as conn:
            conn.execute("BEGIN")
            conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
            yield
            conn.rollback()
        return
    base, _, schema = store.partition("?schema=")
    with psycopg.connect(base) as pg:
        pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if reads_keys:
            table = sql.Identifier(schema, TABLE)
            pg.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
        else:
            pg.execute("SELECT 1").fetchone()
        yield
        pg.rollback()


@pytest.mark.usefixtures("key")
def test_forget_warns_when_an_open_session_keeps_a_copy_then_scrubs_again(
    store_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALTRAIL_LOCK_TIMEOUT", "1")
    # On PostgreSQL an old snapshot alone keeps the row in a rewrite, and a
    # reader of the key table also holds off the rewrite's lock.
    cases = [(GRETA, True)]
    if not store_url.startswith("sqlite"):
        cases.append((OTTO, False))
    with imported(store_url, clock) as app:
        privacy = app.event_mapper.privacy
        assert privacy is not None
        for contact, reads_keys in cases:
            ref = privacy.ref(contact)
            wrapped = privacy.table.by_refs([ref])[ref][1]
            with _older_reader(store_url, reads_keys):
                # The key is destroyed and the views rebuilt even so.
                done = forget(app, contact, load_rules(None))
                assert done.key_id is not None
                assert not done.scrubbed
                assert privacy.table.by_refs([ref]) == {}
                # The warning is honest: the old copy really is still there.
                assert wrapped in _on_disk(store_url)
            # With the default lock timeout: other sessions of a busy server
            # may hold snapshots for more than a second.
            monkeypatch.delenv("DEALTRAIL_LOCK_TIMEOUT")
            with DealTrail(store_url, clock=clock) as patient:
                again = forget(patient, contact, load_rules(None))
            monkeypatch.setenv("DEALTRAIL_LOCK_TIMEOUT", "1")
            assert again.key_id is None
            assert again.scrubbed
            assert wrapped not in _on_disk(store_url)


@pytest.mark.usefixtures("key")
def test_forget_command_prints_the_warning(sqlite_url: str) -> None:
    ok(run(sqlite_url, "import", str(FIXTURE)))
    with _older_reader(sqlite_url):
        result = run(sqlite_url, "forget", GRETA, env={"DEALTRAIL_LOCK_TIMEOUT": "1"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"forgot {GRETA}: ")
    assert result.stderr == (
        "warning: a session that is still open kept an old copy of the destroyed "
        "key in the store's files; run forget again once it has ended "
        "(docs/security.md)\n"
    )
    result = run(sqlite_url, "forget", GRETA)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"{GRETA}: no key to destroy")


def _deal_names(app: DealTrail, rules: Any) -> list[str]:
    return [s.name for s in app.summaries(rules).result]


@pytest.mark.usefixtures("no_key")
def test_forget_needs_encryption_and_a_valid_contact(sqlite_url: str) -> None:
    ok(run(sqlite_url, "import", str(FIXTURE)))
    line = one_line_error(run(sqlite_url, "forget", GRETA))
    assert line == (
        "error: forget needs encryption at rest: set DEALTRAIL_KEY or "
        "DEALTRAIL_KEY_FILE"
    )
    key = {"DEALTRAIL_KEY": new_master_key()}
    line = one_line_error(run(sqlite_url, "forget", "two words", env=key))
    assert line == (
        "error: contact: 'two words' is not an email or a CRM id (it has spaces)"
    )
    # Checked as every event's contact is, its length limit included.
    for contact in ("x" * 201, "x" * 5000, "a@b.example\nforged line"):
        line = one_line_error(run(sqlite_url, "forget", contact, env=key))
        assert line == (
            "error: contact: String should have at most 200 characters"
            if len(contact) > 200
            else "error: contact: must be a single line without control characters"
        )
    # A contact at the limit is one: with no key of theirs, nothing to destroy.
    longest = "x" * 200
    assert ok(run(sqlite_url, "forget", longest, env=key)) == (
        f"{longest}: no key to destroy (already forgotten, or never recorded "
        "with encryption on); views rebuilt\n"
    )


@pytest.mark.usefixtures("no_key")
def test_forget_warns_of_events_recorded_before_encryption(sqlite_url: str) -> None:
    ok(run(sqlite_url, "import", str(FIXTURE)))
    result = run(sqlite_url, "forget", GRETA, env={"DEALTRAIL_KEY": new_master_key()})
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: 6 events recorded before encryption was turned on still name "
        f"{GRETA} in plain text\n"
    )


@pytest.mark.usefixtures("key")
def test_reimporting_a_forgotten_history(sqlite_url: str, tmp_path: Path) -> None:
    ok(run(sqlite_url, "import", str(FIXTURE)))
    ok(run(sqlite_url, "forget", GRETA))
    # Touchpoints keep their ids: the same file is refused, nothing written.
    result = run(sqlite_url, "import", str(FIXTURE))
    assert result.exit_code == 1
    assert "touchpoint 'fix-t1' is already recorded" in result.stderr
    # Her other facts come back as new ones, under a new key.
    joined = [line for line in FIXTURE.read_text().splitlines() if "Greta Lang" in line]
    again = tmp_path / "again.jsonl"
    again.write_text("\n".join(joined) + "\n")
    result = run(sqlite_url, "import", str(again))
    assert result.exit_code == 0
    assert result.stderr.startswith("imported 1 event")
    timeline = ok(run(sqlite_url, "timeline", "FIX-1"))
    assert "Greta Lang" in timeline
    assert "erased-" in timeline


@pytest.mark.usefixtures("key")
def test_a_damaged_envelope_is_a_one_line_error(sqlite_url: str) -> None:
    import sqlite3

    ok(run(sqlite_url, "import", str(FIXTURE)))
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        # Swap Otto's name into Greta's stakeholder event: another key's text.
        rows = db.execute(
            "SELECT rowid, state FROM stored_events WHERE topic = 'StakeholderJoined'"
        ).fetchall()
        (greta_id, greta), (_, otto) = rows
        moved = orjson.loads(greta) | {"name": orjson.loads(otto)["name"]}
        db.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?",
            (orjson.dumps(moved), greta_id),
        )
    line = one_line_error(run(sqlite_url, "timeline", "FIX-1"))
    assert line == (
        f"error: store {sqlite_url}: the name of an event of deal 'FIX-1' cannot "
        "be decrypted (damaged)"
    )


def test_errors_are_dealtrail_errors(sqlite_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("DEALTRAIL_KEY", "short")
    with pytest.raises(InputError):
        DealTrail(sqlite_url)
    monkeypatch.setenv("DEALTRAIL_KEY", new_master_key())
    ok(run(sqlite_url, "init"))
    monkeypatch.setenv("DEALTRAIL_KEY", new_master_key())
    with pytest.raises(StoreError):
        DealTrail(sqlite_url)

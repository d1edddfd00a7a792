"""``dealtrail doctor``: the store's kind, size, events, views and problems."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine.application import DealTrail
from engine.rules import RuleSet
from tests.conftest import Clock
from tests.factories import import_examples, opened, touch
from tests.test_chain import Raw

RUNNER = CliRunner()


def doctor(store: str, *args: str) -> Result:
    return RUNNER.invoke(
        cli, ["--store", store, "doctor", *args], catch_exceptions=False
    )


def filled(url: str) -> int:
    with DealTrail(url, clock=Clock(datetime(2026, 12, 1, tzinfo=UTC))) as app:
        import_examples(app)
        return app.position()


def test_doctor_reports_a_sqlite_store(sqlite_url: str) -> None:
    events = filled(sqlite_url)
    result = doctor(sqlite_url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"store       {sqlite_url} (sqlite)"
    assert lines[1].startswith("size        ")
    assert lines[1].endswith(", file mode 600")
    assert lines[2] == f"events      {events} on 9 deals"
    # The views have never been built: everything is lag.
    assert lines[3] == (
        f"views       position 0 of {events} (lag {events}); "
        "rules none (views not built yet)"
    )


def test_a_store_created_through_the_engine_is_private(sqlite_url: str) -> None:
    old = os.umask(0o022)
    try:
        with DealTrail(sqlite_url) as app:
            app.record(opened())
    finally:
        os.umask(old)
    for suffix in ("", "-wal", "-shm"):
        path = sqlite_url.removeprefix("sqlite:///") + suffix
        if suffix == "" or os.path.exists(path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_doctor_json_after_the_views_are_built(sqlite_url: str) -> None:
    events = filled(sqlite_url)
    with DealTrail(sqlite_url) as app:
        app.update_views(RuleSet())
    result = doctor(sqlite_url, "--format", "json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    path = sqlite_url.removeprefix("sqlite:///")
    assert report["size_bytes"] >= os.path.getsize(path) > 0
    assert report["events"] == events
    assert report["views"] == {
        "head": events,
        "lag": 0,
        "position": events,
        "rules_current": True,
        "rules_hash": RuleSet().rules_hash,
    }
    assert report["chain"] == {
        "broken_deals": 0,
        "status": "intact",
        "unchained_events": 0,
    }
    assert report["encryption"] == "off"
    assert report["problems"] == []


def test_a_broken_chain_is_a_problem(sqlite_url: str) -> None:
    filled(sqlite_url)
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        db.execute(
            "UPDATE stored_events SET state = replace(state, 'Kestrel', 'Kestrei') "
            "WHERE rowid = (SELECT min(rowid) FROM stored_events "
            "WHERE instr(state, 'Kestrel') > 0)"
        )
    result = doctor(sqlite_url)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[4] == "chain       broken"
    assert result.stdout.splitlines()[-1].startswith(
        "problem     chain broken: KESTREL-2026-02: position "
    )


def test_doctor_says_when_personal_data_is_encrypted(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = base64.b64encode(bytes(range(32))).decode()
    filled(store_url)
    # A key set on a plain store: nothing is sealed until the first write.
    monkeypatch.setenv("DEALTRAIL_KEY", key)
    assert _encryption(store_url) == "off (a key is set: the first write turns it on)"
    with DealTrail(store_url) as app:
        app.record(opened("SEALED-1"))
        # Nothing personal yet: still plain.
        privacy = app.event_mapper.privacy
        assert privacy is not None
        assert not privacy.started
        app.record(touch("t1", deal="SEALED-1"))
    assert _encryption(store_url) == "on (personal fields sealed with per-contact keys)"
    # Without the key, doctor and verify still read the stored bytes.
    monkeypatch.delenv("DEALTRAIL_KEY")
    assert _encryption(store_url) == (
        "on (personal fields sealed; no key set, so none were read)"
    )
    verified = RUNNER.invoke(cli, ["--store", store_url, "verify"])
    assert verified.exit_code == 0, verified.stderr
    assert "chains intact" in verified.stdout
    refused = RUNNER.invoke(cli, ["--store", store_url, "timeline", "SEALED-1"])
    assert refused.exit_code == 1
    assert refused.stderr.endswith(
        "is encrypted; set DEALTRAIL_KEY or DEALTRAIL_KEY_FILE to its key\n"
    )


def _encryption(store: str) -> str:
    result = doctor(store)
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("encryption")]
    return line.removeprefix("encryption").strip()


def test_a_store_file_others_can_read_is_a_problem(sqlite_url: str) -> None:
    filled(sqlite_url)
    os.chmod(sqlite_url.removeprefix("sqlite:///"), 0o644)
    result = doctor(sqlite_url)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == (
        "problem     the store file is readable by others (mode 644); "
        "run: chmod 600 on it"
    )


@pytest.mark.parametrize(
    ("mode", "access"),
    [
        (0o644, "readable by others"),
        (0o640, "readable by others"),
        (0o620, "writable by others"),
        (0o610, "open to others"),
    ],
)
def test_a_key_file_others_can_use_is_a_problem(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: int,
    access: str,
) -> None:
    filled(sqlite_url)
    key_file = tmp_path / "master key"
    key_file.write_text(base64.b64encode(bytes(range(32))).decode())
    key_file.chmod(mode)
    monkeypatch.delenv("DEALTRAIL_KEY", raising=False)
    monkeypatch.setenv("DEALTRAIL_KEY_FILE", str(key_file))
    problem = (
        f"key file {key_file} is {access} (mode {mode:o}); run: chmod 600 '{key_file}'"
    )
    result = doctor(sqlite_url)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1] == f"problem     {problem}"
    assert result.stderr == f"warning: {problem}\n"
    result = doctor(sqlite_url, "--format", "json")
    assert result.exit_code == 1
    assert orjson.loads(result.stdout)["problems"] == [problem]
    # A private key file is no problem.
    key_file.chmod(0o600)
    result = doctor(sqlite_url)
    assert (result.exit_code, result.stderr) == (0, "")
    assert not [x for x in result.stdout.splitlines() if x.startswith("problem")]


def test_doctor_on_postgresql_never_shows_the_password(postgres_url: str) -> None:
    events = filled(postgres_url)
    # Trust authentication ignores the password, which must still be hidden.
    with_password = postgres_url.replace("://postgres@", "://postgres:s3cr3t@", 1)
    assert with_password != postgres_url
    result = doctor(with_password, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "s3cr3t" not in result.output
    report = orjson.loads(result.stdout)
    assert report["kind"] == "postgresql"
    assert report["store"].startswith("postgresql://postgres:***@")
    assert report["file_mode"] is None
    assert report["size_bytes"] > 0
    assert report["events"] == events


def test_doctor_reports_a_payload_that_no_longer_decodes(sqlite_url: str) -> None:
    events = filled(sqlite_url)
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE stored_events SET state = 'garbage' WHERE rowid = 1")
    result = doctor(sqlite_url)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[2] == f"events      {events} on 9 deals"
    assert lines[4] == "chain       broken"
    assert lines[-1].startswith("problem     chain broken: ")


def test_doctor_reports_a_payload_set_to_null(store_url: str) -> None:
    filled(store_url)
    Raw(store_url).execute(
        "UPDATE {events} SET state = NULL WHERE originator_version = 2"
    )
    result = doctor(store_url)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[4] == "chain       broken"
    assert lines[-1].startswith("problem     chain broken: ")
    assert "position 2: payload missing (the stored state is NULL) (and " in lines[-1]

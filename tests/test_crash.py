"""SIGKILL a real dealtrail process at random points of an import, a views
rebuild and a views follower, then check what it left on both stores: no
event lost or doubled, versions contiguous per deal, views equal to a fresh
rebuild after a restart, and a re-run that completes.

Kill times are drawn from a seeded generator across the measured length of
an uninterrupted run (early kills land before the store is even opened,
late ones around the commit). DEALTRAIL_CRASH_RUNS sets the kills per
scenario (CI runs a few; see docs/security.md for the full count) and
DEALTRAIL_CRASH_SEED the seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import generate
from engine.application import DealTrail
from engine.errors import UnknownDealError
from engine.events import Event, TouchpointLogged
from engine.importing.native import Located, iter_lines
from tests.factories import import_examples
from tests.harness.stores import (
    RULES,
    drop,
    gaps_in_versions,
    pure_documents,
    sibling_url,
)

pytestmark = pytest.mark.crash

RUNS = int(os.environ.get("DEALTRAIL_CRASH_RUNS", "1"))
SEED = int(os.environ.get("DEALTRAIL_CRASH_SEED", "20260601"))
CORPUS_EVENTS = 1500
# Generous: a process that outlives this is hung, and the test says so.
TIMEOUT = 120.0
FOLLOW = ("projections", "follow", "--poll", "0.05")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    with path.open("wb") as out:
        generate.write(CORPUS_EVENTS, SEED, out)
    return path


def _identity(event: Event) -> bytes:
    """An event's facts, without the recording time the store adds."""
    return orjson.dumps(
        event.model_dump(mode="json", exclude={"recorded_at"}),
        option=orjson.OPT_SORT_KEYS,
    )


def _corpus_events(corpus: Path) -> Counter[bytes]:
    with corpus.open("rb") as lines:
        items = list(iter_lines(lines, str(corpus)))
    assert all(isinstance(item, Located) for item in items)
    return Counter(_identity(item.event) for item in items if isinstance(item, Located))


def _stored_events(url: str) -> Counter[bytes]:
    with DealTrail(url) as app:
        return Counter(_identity(r.event) for r in app.stored_events())


def _start(url: str, *args: str, spool_dir: Path, log: Path) -> subprocess.Popen[str]:
    """A dealtrail process; its temporary files go to ``spool_dir``."""
    env = os.environ | {"TMPDIR": str(spool_dir)}
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "--store", url, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )


def _finish(process: subprocess.Popen[str], what: str, log: Path) -> None:
    try:
        process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"{what} hung for {TIMEOUT:.0f} s; its stderr:\n{log.read_text()}")
    assert process.returncode == 0, f"{what} failed:\n{log.read_text()}"


def _kill_after(process: subprocess.Popen[Any], delay: float) -> bool:
    """SIGKILL ``process`` after ``delay`` seconds; False if it ended first."""
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=TIMEOUT)
        return True
    return False


def _delays(span: float, rng: random.Random) -> Iterator[float]:
    """One kill time in each of RUNS equal slices of ``span``."""
    for run in range(RUNS):
        yield span * (run + rng.random()) / RUNS


def _spools(spool_dir: Path) -> set[str]:
    """Whatever an import left in its temporary directory."""
    return {p.name for p in spool_dir.iterdir()}


def test_a_killed_import_leaves_all_or_nothing_and_a_rerun_completes(
    store_url: str, corpus: Path, tmp_path: Path
) -> None:
    expected = _corpus_events(corpus)
    spool_dir = tmp_path / "spools"
    spool_dir.mkdir()
    log = tmp_path / "stderr.log"
    rng = random.Random(SEED)
    urls = [sibling_url(store_url, "reference")]
    try:
        started = time.monotonic()
        _finish(
            _start(urls[0], "import", str(corpus), spool_dir=spool_dir, log=log),
            "the uninterrupted import",
            log,
        )
        span = time.monotonic() - started
        assert _stored_events(urls[0]) == expected
        assert _spools(spool_dir) == set(), "a finished import left its spool"
        with DealTrail(urls[0]) as app:
            reference_views = pure_documents(app)

        kills = 0
        for run, delay in enumerate(_delays(span, rng)):
            url = sibling_url(store_url, f"run{run}")
            urls.append(url)
            importing = _start(url, "import", str(corpus), spool_dir=spool_dir, log=log)
            kills += _kill_after(importing, delay)
            where = f"run {run}, killed at {delay:.2f} s of {span:.2f} s"

            stored = _stored_events(url)
            assert stored in (Counter(), expected), (
                f"{where}: {stored.total()} of {expected.total()} events stored "
                f"({(stored - expected).total()} not in the file)"
            )
            assert gaps_in_versions(url) == {}, where
            # The spool is unlinked as soon as it is opened: even a killed
            # import leaves no copy of its input behind.
            assert _spools(spool_dir) == set(), where
            _finish(
                _start(url, "import", str(corpus), spool_dir=spool_dir, log=log),
                f"the import re-run after {where}",
                log,
            )
            assert _spools(spool_dir) == set(), f"{where}: the re-run left its spool"
            assert _stored_events(url) == expected, where
            assert gaps_in_versions(url) == {}, where
            with DealTrail(url) as app:
                app.update_views(RULES)
                assert app.views.load() == pure_documents(app) == reference_views
        assert kills >= 1, "every import ended before its kill: nothing was tested"
    finally:
        for url in urls:
            drop(url)


def test_a_killed_rebuild_never_shows_half_built_views(
    store_url: str, corpus: Path, tmp_path: Path
) -> None:
    with DealTrail(store_url) as app, corpus.open("rb") as lines:
        app.import_native([(str(corpus), lines)])
        app.update_views(RULES)
        head = app.position()
        expected = pure_documents(app)
    log = tmp_path / "stderr.log"
    rng = random.Random(SEED + 1)
    rebuild = ("projections", "rebuild", "--batch-size", "100")

    started = time.monotonic()
    _finish(_start(store_url, *rebuild, spool_dir=tmp_path, log=log), "rebuild", log)
    span = time.monotonic() - started

    kills = 0
    for run, delay in enumerate(_delays(span, rng)):
        kills += _kill_after(
            _start(store_url, *rebuild, spool_dir=tmp_path, log=log), delay
        )
        where = f"run {run}, killed at {delay:.2f} s of {span:.2f} s"
        with DealTrail(store_url) as app:
            # The rebuild empties the views, then writes them whole at once.
            left = (app.views.position(), app.views.load())
            assert left in ((0, []), (head, expected)), (
                f"{where}: views at position {left[0]} with {len(left[1])} deals"
            )
            app.update_views(RULES)
            assert app.views.load() == expected, where
        _finish(
            _start(store_url, *rebuild, spool_dir=tmp_path, log=log),
            f"the rebuild re-run after {where}",
            log,
        )
        with DealTrail(store_url) as app:
            assert (app.views.position(), app.views.load()) == (head, expected), where
            assert app.position() == head, f"{where}: a rebuild wrote events"
    assert gaps_in_versions(store_url) == {}
    assert kills >= 1, "every rebuild ended before its kill: nothing was tested"


def _touch_ids(app: DealTrail, deal: str) -> list[str]:
    try:
        history = app.history(deal)
    except UnknownDealError:
        return []
    return [
        r.event.touchpoint for r in history if isinstance(r.event, TouchpointLogged)
    ]


class _Follower:
    """``dealtrail projections follow`` as a process, its stderr read aside."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--store", url, *FOLLOW],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # A hung follower prints every thread's stack on SIGABRT.
            env=os.environ | {"PYTHONFAULTHANDLER": "1"},
        )
        self.lines: list[str] = []
        self.following = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.following.wait(TIMEOUT):
            self.process.kill()
            pytest.fail(f"the follower never started: {self.lines}")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if line.startswith("following"):
                self.following.set()

    def stop(self) -> int:
        """Ctrl-C it; its exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(timeout=TIMEOUT)
            self._reader.join(timeout=TIMEOUT)
            stacks = "".join(self.lines)
            pytest.fail(f"the follower did not stop on Ctrl-C:\n{stacks}")
        self._reader.join(timeout=TIMEOUT)
        return self.process.returncode


def _writer(url: str, deal: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.harness.writer", url, deal, str(count)],
        stdout=subprocess.DEVNULL,
    )


def test_a_killed_follower_loses_no_update_while_another_process_writes(
    store_url: str,
) -> None:
    with DealTrail(store_url) as app:
        import_examples(app)
        app.update_views(RULES)
    rng = random.Random(SEED + 2)
    kills = 0
    for run in range(RUNS):
        deal = f"CRASH-{run}"
        follower = _Follower(store_url)
        writer = _writer(store_url, deal, 500)
        # The follower dies first or last, early or late, while the writer writes.
        follower_at, writer_at = rng.uniform(0.1, 1.5), rng.uniform(0.1, 1.5)
        processes: list[tuple[float, subprocess.Popen[Any]]] = [
            (follower_at, follower.process),
            (writer_at, writer),
        ]
        first, second = sorted(processes, key=lambda pair: pair[0])
        started = time.monotonic()
        kills += _kill_after(first[1], first[0])
        kills += _kill_after(
            second[1], max(0.0, second[0] - (time.monotonic() - started))
        )
        follower.process.wait(timeout=TIMEOUT)
        where = (
            f"run {run}: follower killed at {follower_at:.2f} s, "
            f"writer at {writer_at:.2f} s"
        )

        with DealTrail(store_url) as app:
            ids = _touch_ids(app, deal)
            assert ids == [f"t{i:05d}" for i in range(len(ids))], where
            assert gaps_in_versions(store_url) == {}, where
            assert app.views.position() <= app.position(), where
            app.update_views(RULES)
            assert app.views.load() == pure_documents(app), where

        # Re-runs: the writer finishes a few more; a new follower catches up.
        rerun = _writer(store_url, deal, len(ids) + 3)
        assert rerun.wait(timeout=TIMEOUT) == 0, where
        follower = _Follower(store_url)
        with DealTrail(store_url) as app:
            assert _touch_ids(app, deal) == [f"t{i:05d}" for i in range(len(ids) + 3)]
            deadline = time.monotonic() + TIMEOUT
            while app.view_status().lag and time.monotonic() < deadline:
                time.sleep(0.05)
            head = app.position()
            assert follower.stop() == 0, where
            assert follower.lines[-1] == f"stopped at position {head}\n", where
            assert app.views.load() == pure_documents(app), where
    assert kills >= 1

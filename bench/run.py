"""Measure dealtrail against its baselines, at several sizes, on each store.

    python bench/run.py --sizes 100000,1000000 --stores sqlite,postgresql
    python bench/run.py --sizes 20000 --stores sqlite        # a quick run

For every size, a corpus from ``bench/generate.py`` is imported with the
``dealtrail`` CLI and with the two import baselines of ``bench/baselines.py``,
then rebuilt with ``dealtrail projections rebuild`` and scanned by the
rebuild ceiling; follow mode is timed from ``DealTrail.record`` to the view
catching up. On the largest store, single-deal audits and timelines are
timed in process, and the CLI's start-up against ``python -c pass``.

Prints a table per store and writes ``bench/results/<date>-<store>.json``.
Every command runs as a child process, one at a time, timed from outside
(start-up included) and measured for peak RSS. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import psycopg

from engine.errors import DealtrailError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GENERATE = HERE / "generate.py"
BASELINES = HERE / "baselines.py"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
PACKAGES = (
    "dealtrail",
    "eventsourcing",
    "pydantic",
    "pydantic-core",
    "orjson",
    "psycopg",
    "click",
)

# The goals of docs/performance.md.
IMPORT_SHARE_OF_CEILING = 0.60
IMPORT_TIMES_LIBRARY = 3.0
REBUILD_SHARE_OF_CEILING = 0.40
AUDIT_P50_MS = 20.0
HELP_MS = 250.0
REBUILD_RSS_MB = 400.0
GOAL_SIZE = 1_000_000


class BenchError(Exception):
    """A step of the benchmark failed; the message is one line."""


# Child processes, timed and measured one at a time.


@dataclass(frozen=True, slots=True)
class Child:
    seconds: float
    peak_rss_mb: float
    stdout: bytes


def run_child(args: Sequence[str], what: str) -> Child:
    """Run a command to completion: wall time and peak RSS of that child alone.

    ``os.wait4`` reports the resource use of the one child it reaps, unlike
    ``RUSAGE_CHILDREN``, which keeps the largest child seen so far.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(args), stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            last = lines[-1] if lines else "no message"
            raise BenchError(f"{what} failed (exit {proc.returncode}): {last}")
        out.seek(0)
        # ru_maxrss is in kilobytes on Linux.
        return Child(seconds, usage.ru_maxrss / 1024, out.read())


def dealtrail_command() -> list[str]:
    script = Path(sys.executable).parent / "dealtrail"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli"]


def python_script(path: Path, *args: str) -> list[str]:
    return [sys.executable, str(path), *args]


def rate(events: int, child: Child) -> dict[str, float]:
    return {
        "seconds": round(child.seconds, 3),
        "events_per_second": round(events / child.seconds, 1),
        "peak_rss_mb": round(child.peak_rss_mb, 1),
    }


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds (p99 by nearest rank: the slowest of up to
    51 samples)."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "samples": len(ordered),
    }


# Stores.


class Stores:
    """Creates, sizes and drops the stores of one kind for a run."""

    def __init__(self, kind: str, scratch: Path, postgres: str) -> None:
        self.kind = kind
        self.scratch = scratch
        self.postgres = postgres
        self.run_id = f"{os.getpid()}"
        self.events_table = "stored_events" if kind == "sqlite" else "dealtrail_events"
        self.made: list[str] = []

    def url(self, name: str) -> str:
        self.made.append(name)
        if self.kind == "sqlite":
            return f"sqlite:///{self.scratch / name}.db"
        return f"{self.postgres}?schema={self.schema(name)}"

    def schema(self, name: str) -> str:
        return f"bench_{self.run_id}_{name}"

    def drop(self, name: str) -> None:
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                (self.scratch / f"{name}.db{suffix}").unlink(missing_ok=True)
            return
        from psycopg import sql

        with psycopg.connect(self.postgres, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(self.schema(name))
                )
            )

    def drop_all(self) -> None:
        for name in self.made:
            self.drop(name)
        self.made.clear()

    def sizes(self, name: str) -> tuple[int, int | None]:
        """Bytes of the whole store, and of its events table with its indexes."""
        if self.kind == "sqlite":
            path = self.scratch / f"{name}.db"
            total = sum(
                p.stat().st_size
                for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
                if p.exists()
            )
            db = sqlite3.connect(path)
            try:
                row = db.execute(
                    "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
                    "(SELECT name FROM sqlite_master WHERE tbl_name = ?)",
                    (self.events_table,),
                ).fetchone()
                events = None if row is None or row[0] is None else int(row[0])
            except sqlite3.OperationalError:
                events = None  # an SQLite built without the dbstat table
            finally:
                db.close()
            return total, events

        schema = self.schema(name)
        with psycopg.connect(self.postgres) as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size("
                "format('%%I.%%I', schemaname, tablename)::regclass)), 0) "
                "FROM pg_tables WHERE schemaname = %s",
                (schema,),
            ).fetchone()
            events_row = conn.execute(
                "SELECT pg_total_relation_size(format('%%I.%%I', %s::text, "
                "%s::text)::regclass)",
                (schema, self.events_table),
            ).fetchone()
        assert row is not None
        assert events_row is not None
        return int(row[0]), int(events_row[0])

    def server_version(self) -> str | None:
        if self.kind != "postgresql":
            return None

        with psycopg.connect(self.postgres) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return None if row is None else str(row[0])


# The measurements.


@dataclass(frozen=True, slots=True)
class Options:
    seed: int
    appends: int
    samples: int
    repeats: int
    poll: float


def measure_size(
    stores: Stores, corpus: Path, events: int, options: Options, largest: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Every figure at one size; and the single-deal figures if ``largest``."""
    dealtrail = dealtrail_command()
    jsonl_bytes = corpus.stat().st_size
    name = f"{events}"

    url = stores.url(f"dt_{name}")
    imported = run_child([*dealtrail, "--store", url, "import", str(corpus)], "import")
    library_url = stores.url(f"lib_{name}")
    library = run_child(
        python_script(BASELINES, "library-import", library_url, str(corpus)),
        "library baseline",
    )
    stores.drop(f"lib_{name}")
    raw_url = stores.url(f"raw_{name}")
    ceiling = run_child(
        python_script(BASELINES, "raw-insert", raw_url, str(corpus)), "raw insert"
    )
    stores.drop(f"raw_{name}")
    for child in (library, ceiling):
        handled = orjson.loads(child.stdout)["events"]
        if handled != events:
            raise BenchError(f"a baseline handled {handled} events, not {events}")
    store_after_import, _ = stores.sizes(f"dt_{name}")

    rebuilt = run_child(
        [*dealtrail, "--store", url, "projections", "rebuild"], "rebuild"
    )
    scanned = run_child(
        python_script(BASELINES, "scan", url, stores.events_table), "scan"
    )
    if orjson.loads(scanned.stdout)["events"] != events:
        raise BenchError("the store does not hold every event of the corpus")
    store_bytes, events_bytes = stores.sizes(f"dt_{name}")

    figures: dict[str, Any] = {
        "events": events,
        "deals": count_deals(corpus),
        "jsonl_bytes": jsonl_bytes,
        "import": {
            "dealtrail": rate(events, imported),
            "library": rate(events, library),
            "ceiling": rate(events, ceiling),
            "share_of_ceiling": round(ceiling.seconds / imported.seconds, 3),
            "times_library": round(library.seconds / imported.seconds, 3),
        },
        "rebuild": {
            "dealtrail": rate(events, rebuilt),
            "ceiling": rate(events, scanned),
            "share_of_ceiling": round(scanned.seconds / rebuilt.seconds, 3),
        },
        "disk": {
            "store_bytes_after_import": store_after_import,
            "store_bytes": store_bytes,
            "events_bytes": events_bytes,
            "store_bytes_per_event": round(store_bytes / events, 1),
            "events_bytes_per_event": (
                None if events_bytes is None else round(events_bytes / events, 1)
            ),
            "jsonl_bytes_per_event": round(jsonl_bytes / events, 1),
            "store_over_jsonl": round(store_bytes / jsonl_bytes, 3),
        },
    }
    figures["follow"] = follow_latency(url, options)
    single = single_deal(url, options) if largest else None
    stores.drop(f"dt_{name}")
    return figures, single


def count_deals(corpus: Path) -> int:
    with corpus.open("rb") as lines:
        return sum(b'"type":"DealOpened"' in line for line in lines)


def follow_latency(url: str, options: Options) -> dict[str, Any]:
    """From ``DealTrail.record`` to the follower's view showing the event."""
    from engine.application import DealTrail
    from engine.events import TouchpointLogged

    follower = subprocess.Popen(
        [
            *dealtrail_command(),
            "--store",
            url,
            "projections",
            "follow",
            "--poll",
            str(options.poll),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    app = DealTrail(url)
    try:
        assert follower.stderr is not None
        # The follower says so once it has loaded its rules.
        follower.stderr.readline()
        wait_for(lambda: app.view_status().lag == 0, follower, "the follower")
        rng = random.Random(options.seed)
        keys = app.deal_keys()
        latencies, recording = [], []
        # The first append (a warm-up, not counted) opens connections.
        for number in range(-1, options.appends):
            event = TouchpointLogged(
                deal=rng.choice(keys),
                occurred_at=datetime.now(UTC),
                touchpoint=f"bench-follow-{number + 1}",
                channel="email",
                direction="outbound",
                summary="Benchmark append.",
            )
            start = time.perf_counter()
            app.record(event)
            recorded = time.perf_counter()
            wait_for(caught_up(app, app.position()), follower, "a view")
            if number >= 0:
                latencies.append(time.perf_counter() - start)
                recording.append(recorded - start)
    finally:
        app.close()
        follower.send_signal(signal.SIGINT)
        try:
            follower.wait(timeout=30)
        except subprocess.TimeoutExpired:
            follower.kill()
            follower.wait()
        if follower.stderr is not None:
            follower.stderr.close()
    return {
        **percentiles(latencies),
        "record_p50_ms": round(statistics.median(recording) * 1000, 2),
        "poll_seconds": options.poll if url.startswith("sqlite") else None,
    }


def caught_up(app: Any, head: int) -> Callable[[], bool]:
    return lambda: bool(app.view_status().position >= head)


def wait_for(
    condition: Callable[[], bool],
    follower: subprocess.Popen[bytes],
    what: str,
    timeout: float = 60.0,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if follower.poll() is not None:
            raise BenchError(f"the follower exited ({follower.returncode})")
        if time.monotonic() > deadline:
            raise BenchError(f"{what} did not catch up within {timeout:.0f} s")
        time.sleep(0.001)


def single_deal(url: str, options: Options) -> dict[str, Any]:
    """Warm single-deal audits and timelines, and the CLI's wall times."""
    from engine.application import DealTrail
    from engine.rules import RuleSet

    rules = RuleSet()
    app = DealTrail(url)
    try:
        keys = app.deal_keys()
        chosen = random.Random(options.seed).sample(
            keys, min(options.samples, len(keys))
        )
        # Warm up: connections, caches, imports.
        app.audit(chosen[0], rules)
        app.timeline(chosen[0])
        audits, timelines = [], []
        for key in chosen:
            start = time.perf_counter()
            app.audit(key, rules)
            audits.append(time.perf_counter() - start)
            start = time.perf_counter()
            app.timeline(key)
            timelines.append(time.perf_counter() - start)
    finally:
        app.close()
    dealtrail = dealtrail_command()
    cli = {
        "python_pass_ms": wall_ms([sys.executable, "-c", "pass"], options.repeats),
        "help_ms": wall_ms([*dealtrail, "--help"], options.repeats),
        "audit_ms": wall_ms(
            [*dealtrail, "--store", url, "audit", chosen[0]], options.repeats
        ),
    }
    return {
        "audit": percentiles(audits),
        "timeline": percentiles(timelines),
        "cli": cli,
    }


def wall_ms(args: Sequence[str], repeats: int) -> float:
    """The median wall time of a command, in milliseconds."""
    times = [run_child(args, args[-1]).seconds for _ in range(repeats)]
    return round(statistics.median(times) * 1000, 1)


# Goals, machine, output.


def goals(sizes: dict[str, dict[str, Any]], single: dict[str, Any]) -> list[Any]:
    """Each goal of docs/performance.md against the largest size measured.

    Goals stated at 1,000,000 events are not judged (``met`` is None) on a
    smaller run.
    """
    largest = max(sizes, key=int)
    at = sizes[largest]
    # (goal, measured, as shown, met, stated at GOAL_SIZE)
    checks: list[tuple[str, float, str, bool, bool]] = []
    share = at["import"]["share_of_ceiling"]
    checks.append(
        (
            f"import >= {IMPORT_SHARE_OF_CEILING:.0%} of the raw-insert ceiling",
            share,
            f"{share:.0%}",
            share >= IMPORT_SHARE_OF_CEILING,
            False,
        )
    )
    times = at["import"]["times_library"]
    checks.append(
        (
            f"import >= {IMPORT_TIMES_LIBRARY:g}x the plain-library baseline",
            times,
            f"{times:.2f}x",
            times >= IMPORT_TIMES_LIBRARY,
            False,
        )
    )
    share = at["rebuild"]["share_of_ceiling"]
    checks.append(
        (
            f"rebuild >= {REBUILD_SHARE_OF_CEILING:.0%} of the scan-and-decode ceiling",
            share,
            f"{share:.0%}",
            share >= REBUILD_SHARE_OF_CEILING,
            False,
        )
    )
    p50 = single["audit"]["p50_ms"]
    checks.append(
        (
            f"audit KEY p50 < {AUDIT_P50_MS:g} ms at {GOAL_SIZE:,} events",
            p50,
            f"{p50:.1f} ms",
            p50 < AUDIT_P50_MS,
            True,
        )
    )
    help_ms = single["cli"]["help_ms"]
    checks.append(
        (
            f"dealtrail --help < {HELP_MS:g} ms",
            help_ms,
            f"{help_ms:.0f} ms",
            help_ms < HELP_MS,
            False,
        )
    )
    rss = at["rebuild"]["dealtrail"]["peak_rss_mb"]
    checks.append(
        (
            f"rebuild peak RSS < {REBUILD_RSS_MB:g} MB at {GOAL_SIZE:,} events",
            rss,
            f"{rss:.0f} MB",
            rss < REBUILD_RSS_MB,
            True,
        )
    )
    judged_size = int(largest) >= GOAL_SIZE
    return [
        {
            "goal": goal,
            "measured": measured,
            "shown": shown,
            "at_events": int(largest),
            "met": met if judged_size or not at_goal_size else None,
        }
        for goal, measured, shown, met, at_goal_size in checks
    ]


def machine(stores: Stores) -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        ),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": stores.server_version(),
        "packages": packages,
        **git_state(),
    }


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if changes is None else bool(changes)}


def table(kind: str, result: dict[str, Any]) -> str:
    from tabulate import tabulate

    def n(value: float) -> str:
        return f"{value:,.0f}"

    out = []
    for size, f in sorted(result["sizes"].items(), key=lambda item: int(item[0])):
        imp, reb, disk, fol = f["import"], f["rebuild"], f["disk"], f["follow"]
        rows = [
            [
                "import (events/s)",
                n(imp["dealtrail"]["events_per_second"]),
                f"raw insert {n(imp['ceiling']['events_per_second'])}",
                f"{imp['share_of_ceiling']:.0%} of ceiling",
            ],
            [
                "",
                "",
                f"plain library {n(imp['library']['events_per_second'])}",
                f"{imp['times_library']:.2f}x library",
            ],
            [
                "rebuild (events/s)",
                n(reb["dealtrail"]["events_per_second"]),
                f"scan+decode {n(reb['ceiling']['events_per_second'])}",
                f"{reb['share_of_ceiling']:.0%} of ceiling",
            ],
            [
                "peak RSS import/rebuild (MB)",
                f"{imp['dealtrail']['peak_rss_mb']:.0f} / "
                f"{reb['dealtrail']['peak_rss_mb']:.0f}",
                f"raw insert {imp['ceiling']['peak_rss_mb']:.0f}",
                "",
            ],
            [
                "store bytes/event",
                f"{disk['store_bytes_per_event']:.0f}",
                f"JSONL {disk['jsonl_bytes_per_event']:.0f}",
                f"{disk['store_over_jsonl']:.2f}x JSONL",
            ],
            [
                "follow latency p50/p99 (ms)",
                f"{fol['p50_ms']:.0f} / {fol['p99_ms']:.0f}",
                f"record p50 {fol['record_p50_ms']:.1f}",
                "" if fol["poll_seconds"] is None else f"poll {fol['poll_seconds']} s",
            ],
        ]
        out.append(f"{kind}, {int(size):,} events on {f['deals']:,} deals")
        out.append(tabulate(rows, headers=["figure", "dealtrail", "baseline", "ratio"]))
        out.append("")
    single = result["single_deal"]
    cli = single["cli"]
    rows = [
        ["audit KEY, warm (ms)", single["audit"]["p50_ms"], single["audit"]["p99_ms"]],
        [
            "timeline KEY, warm (ms)",
            single["timeline"]["p50_ms"],
            single["timeline"]["p99_ms"],
        ],
    ]
    out.append(f"{kind}, single deal at {result['largest']:,} events")
    out.append(tabulate(rows, headers=["figure", "p50", "p99"]))
    out.append(
        f"CLI wall (median): python -c pass {cli['python_pass_ms']:.0f} ms, "
        f"dealtrail --help {cli['help_ms']:.0f} ms, "
        f"dealtrail audit KEY {cli['audit_ms']:.0f} ms"
    )
    out.append("")
    marks = {True: "met", False: "NOT MET", None: "n/a (needs 1,000,000 events)"}
    out.append(
        tabulate(
            [[g["goal"], g["shown"], marks[g["met"]]] for g in result["goals"]],
            headers=["goal", "measured", ""],
        )
    )
    return "\n".join(out)


STORE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


MARKDOWN_ROWS = (
    "deals in the corpus",
    "import, events/s",
    "raw-insert ceiling, events/s",
    "plain library, events/s",
    "rebuild, events/s",
    "scan-and-decode ceiling, events/s",
    "peak RSS import / rebuild, MB",
    "bytes per event: store / events table / JSONL",
    "follow latency p50 / p99, ms",
    "`audit KEY` p50 / p99, ms (warm)",
    "`timeline KEY` p50 / p99, ms (warm)",
    "`python -c pass` / `dealtrail --help` / `dealtrail audit KEY`, ms",
)


def markdown_column(result: dict[str, Any], size: str) -> list[str]:
    """One store and size's cells, in ``MARKDOWN_ROWS`` order."""
    f = result["sizes"][size]
    imp, reb, disk, fol = f["import"], f["rebuild"], f["disk"], f["follow"]

    def n(value: float) -> str:
        return f"{value:,.0f}"

    poll = fol["poll_seconds"]
    cells = [
        n(f["deals"]),
        f"{n(imp['dealtrail']['events_per_second'])} "
        f"({imp['share_of_ceiling']:.0%} of ceiling, "
        f"{imp['times_library']:.2f}x library)",
        n(imp["ceiling"]["events_per_second"]),
        n(imp["library"]["events_per_second"]),
        f"{n(reb['dealtrail']['events_per_second'])} "
        f"({reb['share_of_ceiling']:.0%} of ceiling)",
        n(reb["ceiling"]["events_per_second"]),
        f"{imp['dealtrail']['peak_rss_mb']:.0f} / "
        f"{reb['dealtrail']['peak_rss_mb']:.0f}",
        f"{disk['store_bytes_per_event']:.0f} / "
        f"{disk['events_bytes_per_event'] or 0:.0f} / "
        f"{disk['jsonl_bytes_per_event']:.0f}",
        f"{fol['p50_ms']:.0f} / {fol['p99_ms']:.0f}"
        + ("" if poll is None else f" (poll {poll * 1000:.0f} ms)"),
    ]
    if int(size) != result["largest"]:
        return [*cells, "-", "-", "-"]
    single = result["single_deal"]
    audit, timeline, cli = single["audit"], single["timeline"], single["cli"]
    return [
        *cells,
        f"{audit['p50_ms']:.1f} / {audit['p99_ms']:.1f}",
        f"{timeline['p50_ms']:.1f} / {timeline['p99_ms']:.1f}",
        f"{cli['python_pass_ms']:.0f} / {cli['help_ms']:.0f} / {cli['audit_ms']:.0f}",
    ]


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """The results tables of docs/performance.md: a column per store and size."""
    heads, columns = [], []
    for result in results:
        for size in sorted(result["sizes"], key=int):
            heads.append(f"{STORE_NAMES[result['store']]}, {int(size):,}")
            columns.append(markdown_column(result, size))
    lines = ["| figure | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for index, name in enumerate(MARKDOWN_ROWS):
        lines.append(f"| {name} | " + " | ".join(c[index] for c in columns) + " |")
    marks = {True: "met", False: "not met", None: "n/a"}
    stores = [STORE_NAMES[r["store"]] for r in results]
    lines += ["", "| goal | " + " | ".join(stores) + " |"]
    lines.append("|---" * (len(stores) + 1) + "|")
    for index, goal in enumerate(results[0]["goals"]):
        cells = [r["goals"][index] for r in results]
        shown = [f"{c['shown']} ({marks[c['met']]})" for c in cells]
        lines.append(f"| {goal['goal']} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def parse_list(text: str, allowed: Sequence[str] | None = None) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise argparse.ArgumentTypeError("give at least one value")
    for item in items:
        if allowed is not None and item not in allowed:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not one of {', '.join(allowed)}"
            )
        if allowed is None and (not item.isdigit() or int(item) < 1):
            raise argparse.ArgumentTypeError(f"{item!r} is not a positive number")
    return items


@contextmanager
def scratch_dir(parent: str | None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dealtrail-bench-", dir=parent) as path:
        yield Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark dealtrail against its baselines (docs/performance.md)."
    )
    parser.add_argument(
        "--sizes",
        type=parse_list,
        default="100000,1000000",
        help="corpus sizes in events, comma-separated (default: 100000,1000000)",
    )
    parser.add_argument(
        "--stores",
        type=lambda t: parse_list(t, ("sqlite", "postgresql")),
        default="sqlite,postgresql",
        help="sqlite, postgresql or both",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--appends", type=int, default=50, help="follow-mode appends")
    parser.add_argument("--samples", type=int, default=30, help="audits and timelines")
    parser.add_argument("--repeats", type=int, default=5, help="runs per CLI timing")
    parser.add_argument("--poll", type=float, default=0.05, help="SQLite follow poll")
    parser.add_argument("--postgres", default=POSTGRES, help="server URL, no schema")
    parser.add_argument("--results", default=str(HERE / "results"), help="directory")
    parser.add_argument("--tmp", help="parent of the scratch directory")
    parser.add_argument(
        "--markdown",
        nargs="+",
        metavar="RESULT",
        help="measure nothing: print the docs/performance.md table of results files",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        try:
            loaded = [orjson.loads(Path(p).read_bytes()) for p in args.markdown]
        except (OSError, orjson.JSONDecodeError) as e:
            print(f"error: cannot read the results: {e}", file=sys.stderr)
            return 1
        print(markdown(loaded))
        return 0
    sizes = sorted({int(s) for s in args.sizes})
    options = Options(args.seed, args.appends, args.samples, args.repeats, args.poll)
    for name in ("appends", "samples", "repeats"):
        if getattr(options, name) < 1:
            parser.error(f"--{name} must be at least 1")
    try:
        written = run(
            sizes, args.stores, options, args.postgres, args.results, args.tmp
        )
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (DealtrailError, psycopg.Error, sqlite3.Error, OSError) as e:
        # A store or server that fails (PostgreSQL not running...).
        lines = str(e).strip().splitlines()
        print(f"error: {lines[0] if lines else type(e).__name__}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def run(
    sizes: list[int],
    kinds: list[str],
    options: Options,
    postgres: str,
    results_dir: str,
    tmp: str | None,
) -> list[Path]:
    started = datetime.now(UTC)
    results: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        scratch = stack.enter_context(scratch_dir(tmp))
        stores = {kind: Stores(kind, scratch, postgres) for kind in kinds}
        for kind_stores in stores.values():
            stack.callback(kind_stores.drop_all)
        for kind, kind_stores in stores.items():
            results[kind] = {
                "store": kind,
                "started_at": started.isoformat(timespec="seconds"),
                "seed": options.seed,
                "options": {
                    "appends": options.appends,
                    "samples": options.samples,
                    "repeats": options.repeats,
                    "poll_seconds": options.poll,
                },
                "machine": machine(kind_stores),
                "sizes": {},
                "largest": sizes[-1],
            }
        for size in sizes:
            corpus = scratch / f"corpus-{size}.jsonl"
            made = run_child(
                python_script(
                    GENERATE,
                    "--events",
                    str(size),
                    "--seed",
                    str(options.seed),
                    "--out",
                    str(corpus),
                ),
                "generate",
            )
            for kind, kind_stores in stores.items():
                figures, single = measure_size(
                    kind_stores, corpus, size, options, largest=size == sizes[-1]
                )
                figures["generate_seconds"] = round(made.seconds, 3)
                results[kind]["sizes"][str(size)] = figures
                if single is not None:
                    results[kind]["single_deal"] = single
            corpus.unlink()
    written = []
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, result in results.items():
        result["goals"] = goals(result["sizes"], result["single_deal"])
        print(table(kind, result))
        print()
        path = folder / f"{started.date().isoformat()}-{kind}.json"
        path.write_bytes(
            orjson.dumps(result, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
            + b"\n"
        )
        written.append(path)
    return written


if __name__ == "__main__":
    sys.exit(main())

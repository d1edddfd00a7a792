"""``dealtrail report``: a deal's timeline as a page to replay in a meeting.

Cheap to import: the engine, Jinja and matplotlib are imported when the
command runs. cli.main loads this module when the command is first asked for.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.main import (
    State,
    check_lost_selection,
    load_rules,
    lost_deal_options,
    parse_date,
    parse_time,
    pass_state,
)

if TYPE_CHECKING:
    from engine.application import DealTrail
    from engine.report.model import Report
    from engine.rules import RuleSet


@click.command()
@click.argument("key", metavar="[KEY]", required=False)
@click.option(
    "--lost",
    "lost_only",
    is_flag=True,
    help="A page for every lost deal, and an index.",
)
@lost_deal_options
@click.option(
    "--out",
    metavar="PATH",
    help="The page to write (with KEY), or the folder for the pages and "
    "index.html (with --lost).",
)
@click.option(
    "--png",
    metavar="FILE",
    help="With KEY: also write a static picture of the timeline.",
)
@pass_state
def report(
    state: State,
    key: str | None,
    lost_only: bool,
    since: str | None,
    owner: str | None,
    account: str | None,
    at: str | None,
    as_known_at: str | None,
    rules_file: str | None,
    out: str | None,
    png: str | None,
) -> None:
    """Write deal KEY's timeline as one self-contained HTML page, or a page
    for every lost deal and an index of them.

    The page draws one lane per stakeholder (decision makers on top) and
    one for the seller side over business time, with touches, follow-ups
    owed, promises, stage changes, warning signs and coaching notes, and
    replays the deal step by step on either clock. It needs no network and
    nothing installed: open it in any browser.

    Examples: dealtrail report ACME-1 --out acme.html --png acme.png;
    dealtrail report --lost --since 2026-01-01 --out reports/
    """
    from engine.errors import InputError

    check_lost_selection(
        key,
        lost_only,
        lost_filters=bool(since or owner or account),
        at=at,
        each="reports each",
    )
    if key is None and png is not None:
        raise InputError("--png goes with a deal KEY")
    if key is not None and out is None and png is None:
        raise InputError("give --out FILE.html, --png FILE or both")
    if key is None and out is None:
        raise InputError("give --out FOLDER for the pages of the lost deals")
    rules = load_rules(rules_file)
    known = parse_time(as_known_at, "--as-known-at")
    app = state.app()
    if key is not None:
        files = _one(app, key, rules, parse_time(at, "--at"), known, out, png)
    else:
        assert out is not None
        files = _lost(
            app,
            rules,
            known,
            Path(out),
            since=parse_date(since, "--since"),
            owner=owner,
            account=account,
        )
    # Everything is rendered before anything is written.
    for path, content in files:
        _write(path, content)
        click.echo(f"wrote {path}", err=True)


def _one(
    app: DealTrail,
    key: str,
    rules: RuleSet,
    at: datetime | None,
    known: datetime | None,
    out: str | None,
    png: str | None,
) -> list[tuple[Path, bytes]]:
    from engine.report.html import render_page

    files = []
    if out is not None:
        _check_file(Path(out), "--out")
    if png is not None:
        _check_file(Path(png), "--png")
    audited = app.audit(key, rules, at=at, as_known_at=known)
    built = _build(app, key, rules, audited.result.meta.evaluated_at, known)
    if out is not None:
        page = render_page(built, position=audited.position)
        files.append((Path(out), page.encode()))
    if png is not None:
        from engine.report.png import render_png

        files.append((Path(png), render_png(built)))
    return files


def _lost(
    app: DealTrail,
    rules: RuleSet,
    known: datetime | None,
    folder: Path,
    *,
    since: date | None,
    owner: str | None,
    account: str | None,
) -> list[tuple[Path, bytes]]:
    from engine.errors import InputError
    from engine.report.html import (
        IndexEntry,
        page_file_names,
        render_index,
        render_page,
    )

    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out: {folder} is a file, not a folder")
    audits = app.audits(
        rules, since=since, owner=owner, account=account, as_known_at=known
    )
    names = page_file_names([a.deal for a in audits.result])
    files, entries = [], []
    for audited in audits.result:
        built = _build(app, audited.deal, rules, audited.meta.evaluated_at, known)
        name = names[audited.deal]
        page = render_page(built, position=audits.position, index_href="index.html")
        files.append((folder / name, page.encode()))
        entries.append(IndexEntry(href=name, report=built))
    title = "Lost deals" + "".join(
        f", {label} {value}"
        for label, value in (
            ("closed since", since),
            ("owner", owner),
            ("account", account),
        )
        if value
    )
    files.append((folder / "index.html", render_index(entries, title=title).encode()))
    return files


def _build(
    app: DealTrail, key: str, rules: RuleSet, at: datetime, known: datetime | None
) -> Report:
    from engine.errors import InputError
    from engine.report.model import build_report

    history = app.history(key)
    context = app.account_context(key, rules, as_known_at=known)
    try:
        return build_report(history, rules, at, as_known_at=known, account=context)
    except ValueError as e:
        raise InputError(str(e)) from None


def _check_file(path: Path, option: str) -> None:
    from engine.errors import InputError

    if path.is_dir():
        raise InputError(f"{option}: {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise InputError(f"{option}: folder {path.parent} does not exist")


def _write(path: Path, content: bytes) -> None:
    """Write ``content`` whole or not at all, as exports are: a new file is
    private to its owner (pages name contacts), a replaced one keeps its
    permissions."""
    from engine.errors import InputError
    from engine.exporting import write_atomically

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None
    write_atomically(path, lambda stream: stream.write(content))

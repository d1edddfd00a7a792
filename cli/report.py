"""``dealtrail report``: a deal's timeline as a page to replay in a meeting.

Cheap to import: the engine, Jinja and matplotlib are imported when the
command runs. cli.main loads this module when the command is first asked for.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
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
    # Everything is rendered before anything is written, and then every
    # file is written or none is.
    _write_all(files, folder=Path(out) if key is None and out is not None else None)
    for path, _ in files:
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
    from engine.errors import InputError
    from engine.report.html import render_page

    files = []
    if out is not None:
        _check_file(Path(out), "--out")
    if png is not None:
        _check_file(Path(png), "--png")
    if out is not None and png is not None and _same(Path(out), Path(png)):
        raise InputError("--out and --png name the same file")
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

    # The folder may be new (it is made when the pages are written), but the
    # folder it goes in must exist: a mistyped path makes no folders.
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out: {folder} is a file, not a folder")
    if not folder.exists():
        _check_parent(folder, "--out")
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
    _check_parent(path, option)


def _check_parent(path: Path, option: str) -> None:
    from engine.errors import InputError

    parent = path.parent
    if parent.is_dir():
        return
    if parent.exists():
        raise InputError(f"{option}: {parent} is a file, not a folder")
    raise InputError(f"{option}: folder {parent} does not exist")


def _same(one: Path, other: Path) -> bool:
    return one.resolve() == other.resolve()


_NOTHING = "; nothing was written"


def _write_all(files: list[tuple[Path, bytes]], *, folder: Path | None) -> None:
    """Write every file or none, making ``folder`` first if it is missing
    (its parent was checked to exist).

    Each file is first written whole to a temporary file beside it (private
    to its owner, or with the mode of the file it replaces), and only once
    all are written are they moved into place. If any step fails, the
    temporary files are removed, files already moved are put back as they
    were (the old ones were kept as hard links, or copies) and a folder made
    here is removed again: a failed command changes nothing on disk.
    """
    from engine.errors import InputError

    for path, _ in files:
        if path.is_dir():
            raise InputError(f"cannot write {path}: it is a folder{_NOTHING}")
    made = False
    if folder is not None and not folder.is_dir():
        try:
            folder.mkdir()
        except OSError as e:
            raise InputError(
                f"--out: cannot make folder {folder}: {e.strerror or e}"
            ) from None
        made = True
    staged: list[tuple[Path, Path]] = []  # (temporary file, target)
    kept: dict[Path, Path] = {}  # target -> its old content, until success
    placed: list[Path] = []
    current = files[0][0] if files else Path()
    try:
        for path, content in files:
            current = path
            staged.append((_stage(path, content), path))
        for _, path in staged:
            current = path
            if path.exists() or path.is_symlink():
                kept[path] = _keep(path)
        for temporary, path in staged:
            current = path
            os.replace(temporary, path)
            placed.append(path)
    except BaseException as e:
        for path in reversed(placed):
            with contextlib.suppress(OSError):
                if path in kept:
                    os.replace(kept.pop(path), path)
                else:
                    path.unlink()
        for temporary, _ in staged:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        for old in kept.values():
            with contextlib.suppress(OSError):
                old.unlink(missing_ok=True)
        if made and folder is not None:
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(e, OSError):
            reason = e.strerror or e
            raise InputError(f"cannot write {current}: {reason}{_NOTHING}") from e
        raise
    for old in kept.values():
        with contextlib.suppress(OSError):
            old.unlink(missing_ok=True)


def _stage(path: Path, content: bytes) -> Path:
    """``content`` in a new temporary file beside ``path``, synced, with the
    mode ``path`` has (a new file is 0600: pages name contacts)."""
    try:
        mode: int | None = path.stat().st_mode & 0o7777
    except OSError:
        mode = None
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed by the caller
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    temporary = Path(handle.name)
    try:
        with handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            temporary.chmod(mode)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _keep(path: Path) -> Path:
    """A second name for ``path``'s current file (a hard link, else a
    private copy), to put it back if the command fails after replacing it."""
    linked = True
    while True:
        old = path.with_name(f".{path.name}.{secrets.token_hex(6)}.old")
        try:
            if linked:
                os.link(path, old, follow_symlinks=False)
            elif path.is_symlink():
                os.symlink(os.readlink(path), old)
            else:
                # Made private before a byte is copied, then given the mode.
                descriptor = os.open(old, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.close(descriptor)
                shutil.copyfile(path, old)
                shutil.copymode(path, old)
            return old
        except FileExistsError:
            continue
        except OSError:
            if not linked:
                old.unlink(missing_ok=True)
                raise
            linked = False  # a file system without hard links

"""``dealtrail export`` and ``dealtrail schemas``: documents for other tools.

Cheap to import: the engine is imported when a command runs. cli.main
loads this module when one of its commands is first asked for.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from cli.main import (
    Group,
    State,
    as_known_at_option,
    as_of_option,
    load_rules,
    parse_date,
    parse_time,
    pass_state,
    rules_option,
)

# The same as engine.exporting.KINDS (a test keeps them equal); spelled out
# here so that --help needs no engine.
KINDS = (
    "events",
    "deals",
    "gaps",
    "stakeholders",
    "audit",
    "replay",
    "accounts",
    "backtest",
)


@click.command()
@click.argument("kind", metavar="KIND", type=click.Choice(KINDS))
@click.option(
    "--deal", metavar="KEY", help="Only deal KEY (events and per-deal kinds)."
)
@click.option(
    "--status", type=click.Choice(["open", "won", "lost"]), help="Only these deals."
)
@click.option("--owner", help="Only deals this rep owns.")
@click.option("--account", help="Only deals of this account.")
@click.option("--lost", is_flag=True, help="audit: only lost deals.")
@click.option("--neglected", is_flag=True, help="accounts: only neglected ones.")
@click.option(
    "--since", metavar="DATE", help="audit, backtest: deals closed on or after DATE."
)
@as_of_option
@as_known_at_option
@click.option(
    "--at",
    metavar="TIME",
    help="Evaluation time (default --as-of, else now; a closed deal's audit: "
    "its close).",
)
@rules_option
@click.option(
    "--out",
    default="-",
    show_default=True,
    metavar="FILE",
    help="Write to FILE ('-' is stdout); it is replaced only by a complete export.",
)
@click.option("--ndjson", is_flag=True, help="One document per line (streamed).")
@pass_state
def export(
    state: State,
    kind: str,
    deal: str | None,
    status: str | None,
    owner: str | None,
    account: str | None,
    lost: bool,
    neglected: bool,
    since: str | None,
    as_of: str | None,
    as_known_at: str | None,
    at: str | None,
    rules_file: str | None,
    out: str,
    ndjson: bool,
) -> None:
    """Export KIND as JSON that names its schema (see docs/export.md).

    KIND is events, deals, gaps, stakeholders, audit, replay, accounts or
    backtest. JSON is one document holding every item in "items"; --ndjson
    writes one document per item. Every document carries "$schema", the
    store position, the rule set's hash and the query; an item of a
    per-deal kind names its deal. Without --deal, a per-deal kind covers
    every deal (--status, --owner and --account select some).

    Examples: dealtrail export audit --lost --since 2026-01-01 --out losses.json;
    dealtrail export events --ndjson | gzip > events.ndjson.gz
    """
    from engine.exporting import (
        ExportQuery,
        write_atomically,
        write_json,
        write_ndjson,
    )
    from engine.exporting import export as prepare

    query = ExportQuery(
        deal=deal,
        status=status,
        owner=owner,
        account=account,
        lost=lost,
        neglected=neglected,
        since=parse_date(since, "--since"),
        as_of=parse_time(as_of, "--as-of"),
        as_known_at=parse_time(as_known_at, "--as-known-at"),
        at=parse_time(at, "--at"),
    )
    rules = load_rules(rules_file)
    writer = write_ndjson if ndjson else write_json
    if out != "-":
        count = write_atomically(
            Path(out),
            lambda stream: writer(prepare(state.app(), kind, query, rules), stream),
        )
        items = "item" if count == 1 else "items"
        click.echo(f"exported {count} {items} ({kind}) to {out}", err=True)
        return
    prepared = prepare(state.app(), kind, query, rules)
    try:
        writer(prepared, sys.stdout.buffer)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (``| head``): stop quietly, unfinished.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        click.get_current_context().exit(1)


@click.group(cls=Group)
def schemas() -> None:
    """Write or check the JSON Schemas of events, outputs and exports."""


folder_option = click.option(
    "--dir",
    "folder",
    default="schemas",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The schemas folder (run from the project root for its schemas/).",
)


@schemas.command("write")
@folder_option
def schemas_write(folder: str) -> None:
    """Write every schema that is missing or out of date.

    Example: dealtrail schemas write --dir build/schemas
    """
    from cli.generate import write_files
    from engine.schemas import schema_documents

    files = schema_documents()
    changed = write_files(files, Path(folder))
    click.echo(f"wrote {len(changed)} of {len(files)} schemas in {folder}", err=True)


@schemas.command("check")
@folder_option
@click.pass_context
def schemas_check(ctx: click.Context, folder: str) -> None:
    """Exit 1, naming them, if any schema is missing or out of date.

    Example: dealtrail schemas check
    """
    from cli.generate import find_stale, stale_message
    from engine.schemas import schema_documents

    files = schema_documents()
    stale = find_stale(files, Path(folder), "*.schema.json")
    for name in stale:
        shown = (Path(folder) / name).as_posix()
        click.echo(
            stale_message(name, files, "dealtrail schemas write", shown=shown),
            err=True,
        )
    if stale:
        ctx.exit(1)
    click.echo(f"all {len(files)} schemas in {folder} are up to date", err=True)

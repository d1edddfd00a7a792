"""``dealtrail verify``: recompute the hash chains over the stored events.

Cheap to import: the engine is imported when the command runs.
"""

from __future__ import annotations

import click

from cli.main import State, pass_state, plural


@click.command()
@click.option(
    "--at",
    "at",
    type=click.IntRange(min=0),
    metavar="POSITION",
    help="Print the chain head as of this store position (an export's "
    '"position"); default: the head of the store.',
)
@click.option(
    "--deal",
    metavar="KEY",
    help="Print this deal's chain head instead of the store's.",
)
@pass_state
@click.pass_context
def verify(ctx: click.Context, state: State, at: int | None, deal: str | None) -> None:
    """Check that no stored event was changed, deleted, reordered or inserted
    behind dealtrail's back (see docs/security.md).

    Recomputes every deal's hash chain and prints each deal's first broken
    link (deal, position, what is wrong), then a summary and, when all is
    intact, the chain head: the store's, or with --deal the deal's, as of
    --at. Compare that head with the "chain" an export carries. Events
    recorded before the store had chains are reported as unchained, not
    broken. Exits 1 when any chain is broken.

    Example: dealtrail verify --at 1520
    """
    app = state.app(keyless=True)
    position = app.position()
    if at is not None and at > position:
        from engine.errors import InputError

        raise InputError(f"--at {at}: the store's head is at position {position}")
    shown = position if at is None else at
    report = app.verify_chains(at=shown)
    if deal is not None and deal not in report.keys:
        from engine.errors import UnknownDealError

        raise UnknownDealError(deal)
    for problem in report.breaks:
        click.echo(f"broken: {problem}")
    summary = (
        f"verified {plural(report.deals, 'deal')}, {plural(report.events, 'event')}: "
    )
    if report.breaks:
        summary += f"{len(report.breaks)} broken"
    elif report.chained_deals:
        summary += "chains intact"
    else:
        summary += "unchained"
    if report.unchained_events:
        one = report.unchained_events == 1
        summary += (
            f"; {plural(report.unchained_events, 'event')} of "
            f"{plural(report.unchained_deals, 'deal')} "
            f"{'predates' if one else 'predate'} chaining and "
            f"{'is' if one else 'are'} unchained"
        )
    click.echo(summary)
    if report.breaks:
        ctx.exit(1)
    if deal is not None:
        anchor = report.anchors.get(deal)
        if anchor is None:
            click.echo(f"deal {deal}: no chain head at position {shown}")
        else:
            click.echo(
                f"deal {deal}: chain head at position {shown}: "
                f"version {anchor.version}, {anchor.digest}"
            )
    elif report.store is not None:
        click.echo(
            f"store: chain head at position {shown}: {report.store.digest} "
            f"({plural(report.store.deals, 'deal')})"
        )

"""``dealtrail doctor``: what state the store is in, and what needs care."""

from __future__ import annotations

import stat
from typing import Any

import click

from cli.main import (
    FORMATS,
    State,
    echo_json,
    pass_state,
    plural,
    rules_option,
    views_rules,
)


@click.command()
@rules_option
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_state
def doctor(state: State, rules_file: str | None, fmt: str) -> None:
    """Report the store's kind, size, events, view lag, chain and encryption.

    Exits with 1 when something needs care: an SQLite file or a master key
    file (DEALTRAIL_KEY_FILE) that others may read, or a broken chain (the
    check recomputes every chain, as verify does).

    Example: dealtrail doctor --format json
    """
    import os

    from cli.main import load_rules
    from engine.privacy import exposed_key_file

    app = state.app(keyless=True)
    health = app.health()
    rules = load_rules(rules_file)
    views = health.views
    problems = []
    if health.file_mode is not None and health.file_mode & (
        stat.S_IRWXG | stat.S_IRWXO
    ):
        problems.append(
            f"the store file is readable by others (mode {health.file_mode:o}); "
            "run: chmod 600 on it"
        )
    exposed = exposed_key_file(os.environ)
    if exposed is not None:
        problems.append(exposed)
    chains = app.verify_chains()
    if chains.breaks:
        first = chains.breaks[0]
        more = len(chains.breaks) - 1
        problems.append(
            f"chain broken: {first}"
            + (f" (and {plural(more, 'more deal')})" if more else "")
            + "; run: dealtrail verify"
        )
    privacy = app.event_mapper.privacy
    keyless = app.event_mapper.sealed is not None
    encrypted = keyless or (privacy is not None and privacy.started)
    if keyless:
        encryption = "on (personal fields sealed; no key set, so none were read)"
    elif encrypted:
        encryption = "on (personal fields sealed with per-contact keys)"
    elif privacy is not None:
        encryption = "off (a key is set: the first write turns it on)"
    else:
        encryption = "off (set DEALTRAIL_KEY to encrypt personal data)"
    report: dict[str, Any] = {
        "store": health.display,
        "kind": health.kind,
        "size_bytes": health.size_bytes,
        "file_mode": None if health.file_mode is None else f"{health.file_mode:o}",
        "events": health.events,
        "deals": health.deals,
        "views": {
            "position": views.position,
            "head": views.head,
            "lag": views.lag,
            "rules_hash": views.rules_hash,
            "rules_current": views.rules_hash == rules.rules_hash,
        },
        "chain": {
            "status": "broken"
            if chains.breaks
            else ("intact" if chains.chained_deals else "unchained"),
            "broken_deals": len(chains.breaks),
            "unchained_events": chains.unchained_events,
        },
        "encryption": "on" if encrypted else "off",
        "problems": problems,
    }
    if fmt == "json":
        echo_json(report)
    else:
        click.echo(_table(report, encryption, rules.rules_hash))
    if problems:
        raise click.exceptions.Exit(1)


def _table(report: dict[str, Any], encryption: str, rules_hash: str) -> str:
    views = report["views"]
    mode = report["file_mode"]
    lines = [
        f"store       {report['store']} ({report['kind']})",
        f"size        {_size(report['size_bytes'])}"
        + (f", file mode {mode}" if mode is not None else ""),
        f"events      {report['events']} on {plural(report['deals'], 'deal')}",
        f"views       position {views['position']} of {views['head']} "
        f"(lag {views['lag']}); rules {(views['rules_hash'] or 'none')[:12]} "
        f"({views_rules(views['rules_hash'], rules_hash)})",
    ]
    chain = report["chain"]
    lines.append(
        f"chain       {chain['status']}"
        + (
            f" ({plural(chain['unchained_events'], 'event')} predate"
            f"{'s' if chain['unchained_events'] == 1 else ''} chaining)"
            if chain["unchained_events"]
            else ""
        )
    )
    lines.append(f"encryption  {encryption}")
    lines += [f"problem     {problem}" for problem in report["problems"]]
    return "\n".join(lines)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")

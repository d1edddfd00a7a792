"""Human-readable renderings for the terminal (the JSON forms need none)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from engine.events import Event
from engine.persistence import Recorded
from engine.projections.headline import Headline

_DETAIL_WIDTH = 70


def _when(value: Any) -> str:
    return value.isoformat(timespec="minutes") if value is not None else "-"


def deal_table(heads: Sequence[Headline]) -> str:
    if not heads:
        return "no deals"
    rows = [
        (h.deal, h.name, h.account, h.owner, h.stage, h.status, _when(h.last_touch_at))
        for h in heads
    ]
    return tabulate(
        rows,
        headers=("DEAL", "NAME", "ACCOUNT", "OWNER", "STAGE", "STATUS", "LAST TOUCH"),
        tablefmt="plain",
    )


def headline_text(h: Headline) -> str:
    amount = f"{h.amount} {h.currency or ''}".strip() if h.amount is not None else "-"
    rows: list[tuple[str, Any]] = [
        ("deal", h.deal),
        ("name", h.name),
        ("account", h.account),
        ("owner", h.owner),
        ("stage", h.stage),
        ("status", h.status),
        ("amount", amount),
        ("expected close", h.expected_close or "-"),
        ("time zone", h.timezone or "-"),
        ("opened", _when(h.opened_at)),
        ("closed", _when(h.closed_at)),
    ]
    if h.status == "lost":
        rows.append(("loss reason", h.loss_reason))
        rows.append(("competitor", h.competitor or "-"))
    rows += [
        ("events", h.events),
        ("touchpoints", h.touchpoints),
        ("last touch", _when(h.last_touch_at)),
    ]
    rows += [("stakeholder", f"{c} ({role})") for c, role in h.stakeholders.items()]
    return tabulate(rows, tablefmt="plain")


def details(event: Event) -> str:
    """The event's own fields, compact, on one line."""
    fields = event.model_dump(
        mode="json",
        exclude_none=True,
        exclude={
            "type",
            "deal",
            "occurred_at",
            "recorded_at",
            "logged_at",
            "actor",
            "source",
        },
    )
    parts = []
    for name, value in fields.items():
        shown = ",".join(value) if isinstance(value, list) else str(value)
        parts.append(f"{name}={shown}")
    text = " ".join(parts)
    return text if len(text) <= _DETAIL_WIDTH else text[: _DETAIL_WIDTH - 1] + "…"


def timeline_table(entries: Sequence[Recorded]) -> str:
    if not entries:
        return "no events"
    rows = []
    for r in entries:
        e = r.event
        lag = e.logging_lag
        rows.append(
            (
                _when(e.occurred_at),
                e.type,
                details(e),
                f"{lag.days}d late" if lag is not None and lag.days >= 1 else "",
            )
        )
    return tabulate(
        rows, headers=("OCCURRED", "EVENT", "DETAILS", "LOGGED"), tablefmt="plain"
    )

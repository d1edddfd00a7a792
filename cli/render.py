"""Human-readable renderings for the terminal (the JSON forms need none)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from engine.events import Event, TouchpointLogged
from engine.persistence import Recorded

_DETAIL_WIDTH = 90


def _when(value: Any) -> str:
    return value.isoformat(timespec="minutes") if value is not None else "-"


def details(event: Event) -> str:
    """The event's own fields, compact, on one line."""
    if isinstance(event, TouchpointLogged):
        who = ", ".join(event.participants) or "nobody"
        text = f"{event.touchpoint}: {event.channel} {event.direction} with {who}"
        if event.outcome:
            text += f" ({event.outcome})"
        if event.summary:
            text += f": {event.summary}"
        return _clip(text)
    return _clip(_fields(event))


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_WIDTH else text[: _DETAIL_WIDTH - 1] + "…"


def _fields(event: Event) -> str:
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
    return " ".join(parts)


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


def _section(title: str, rows: list[Sequence[Any]], headers: Sequence[str]) -> str:
    if not rows:
        return f"{title}: none"
    return f"{title}:\n" + tabulate(rows, headers=headers, tablefmt="plain")


def _meta(meta: Any) -> str:
    return (
        f"deal {meta.deal}, evaluated at {_when(meta.evaluated_at)}; "
        f"rules {meta.rules_version} ({meta.rules_hash[:12]})"
    )


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:g}h"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def gaps_text(g: Any) -> str:
    s = g.summary
    parts = [
        _meta(g.meta),
        f"status {g.status}; {_count(s.obligations, 'follow-up')} owed, "
        f"{s.breaches} breached, "
        f"{s.open_obligations} open; median {_hours(s.median_latency_business_hours)}, "
        f"p90 {_hours(s.p90_latency_business_hours)} (business hours)",
        _section(
            "Follow-ups owed",
            [
                (
                    o.trigger,
                    o.kind,
                    _when(o.trigger_at),
                    o.discharged_by or "(open)",
                    _hours(o.latency_business_hours),
                    "BREACHED" if o.breached else "ok",
                )
                for o in g.obligations
            ],
            ("TRIGGER", "KIND", "AT", "ANSWERED BY", "LATENCY", ""),
        ),
        _section(
            "Promises",
            [
                (p.ref, p.kind, p.due, p.status, p.discharged_by or "-")
                for p in g.promises
            ],
            ("REF", "KIND", "DUE", "STATUS", "KEPT BY"),
        ),
        _section(
            "Buyer-requested timing",
            [
                (r.contact, _when(r.not_before), r.status, ",".join(r.early) or "-")
                for r in g.requested_timing
            ],
            ("BY", "NOT BEFORE", "STATUS", "EARLY TOUCHES"),
        ),
        _section(
            "Unanswered streaks",
            [
                (
                    c.contact or "(deal)",
                    c.longest.length,
                    c.current.length if c.current else 0,
                    _share(c.longest.variety),
                    "PUSHY" if c.longest.pushy else "",
                )
                for c in g.streaks
            ],
            ("CONTACT", "LONGEST", "RUNNING", "VARIETY", ""),
        ),
        _section(
            "Dark periods",
            [
                (
                    _when(d.start),
                    _when(d.end),
                    f"{d.business_days:g}",
                    "ongoing" * d.ongoing,
                )
                for d in g.dark_periods
            ],
            ("FROM", "TO", "BUSINESS DAYS", ""),
        ),
        f"next-step clarity: {_share(g.next_step_clarity.share)}",
    ]
    if g.gave_up_early is not None:
        gave = g.gave_up_early
        parts.append(
            f"gave up early: {gave.attempts} unanswered attempt(s), last "
            f"{_when(gave.last_attempt_at)}, then lost ({gave.lost_ref})"
        )
    return "\n\n".join(parts)


def summary_table(listed: Sequence[tuple[Any, list[str]]]) -> str:
    if not listed:
        return "no deals"
    rows = [
        (
            s.deal,
            s.name,
            s.account,
            s.owner,
            s.stage,
            s.status,
            _when(s.last_touch_at),
            ",".join(flags) or "-",
        )
        for s, flags in listed
    ]
    return tabulate(
        rows,
        headers=(
            "DEAL",
            "NAME",
            "ACCOUNT",
            "OWNER",
            "STAGE",
            "STATUS",
            "LAST TOUCH",
            "FLAGS",
        ),
        tablefmt="plain",
    )


def deal_state_text(d: Any) -> str:
    amount = f"{d.amount} {d.currency or ''}".strip() if d.amount is not None else "-"
    head: list[tuple[str, Any]] = [
        ("name", d.name),
        ("account", d.account),
        ("owner", d.owner),
        ("stage", d.stage),
        ("status", d.status),
        ("amount", amount),
        (
            "expected close",
            f"{d.expected_close or '-'} ({d.close_slip_count} slips, "
            f"{d.close_days_pushed} days pushed)",
        ),
        ("opened", _when(d.opened_at)),
        ("closed", _when(d.closed_at)),
    ]
    if d.status == "lost":
        head += [("loss reason", d.loss_reason), ("competitor", d.competitor or "-")]
    head += [
        (
            "last touch",
            f"{_when(d.last_touch.at)} ({d.last_touch.touch})" if d.last_touch else "-",
        ),
        (
            "last buyer touch",
            f"{_when(d.last_buyer_touch.at)} ({d.last_buyer_touch.touch})"
            if d.last_buyer_touch
            else "-",
        ),
        ("next step", _next_step(d.next_step)),
    ]
    parts = [
        _meta(d.meta),
        tabulate(head, tablefmt="plain"),
        _section(
            "Stakeholders",
            [
                (p.contact, p.name or "-", p.role, _when(p.since))
                for p in d.stakeholders
            ],
            ("CONTACT", "NAME", "ROLE", "SINCE"),
        ),
        _section(
            "Open promises",
            [
                (p.due, p.promise or "-", "OVERDUE" if p.overdue else "")
                for p in d.open_promises
            ],
            ("DUE", "PROMISE", ""),
        ),
        _section(
            "Time in stage",
            [(t.stage, t.visits, f"{t.business_days:g}") for t in d.time_in_stage],
            ("STAGE", "VISITS", "BUSINESS DAYS"),
        ),
    ]
    return "\n\n".join(parts)


def stakeholders_text(s: Any) -> str:
    parts = [
        _meta(s.meta),
        f"{s.distinct_contacts_engaged} distinct contacts engaged",
        _section(
            "Contacts",
            [
                (
                    c.contact,
                    c.current_role or "-",
                    c.engaged_touches,
                    _when(c.first_engaged.at if c.first_engaged else None),
                    _when(c.last_engaged.at if c.last_engaged else None),
                    "yes" if c.replied else "no",
                )
                for c in s.contacts
            ],
            ("CONTACT", "ROLE", "ENGAGED", "FIRST", "LAST", "REPLIED"),
        ),
        _section(
            "Roles covered by stage",
            [(c.stage, ",".join(c.roles) or "-") for c in s.stage_coverage],
            ("STAGE", "ROLES"),
        ),
        _section(
            "Single-threaded spans",
            [
                (t.contact, _when(t.start), _when(t.end), f"{t.business_days:g}")
                for t in s.single_threaded_spans
            ],
            ("CONTACT", "FROM", "TO", "BUSINESS DAYS"),
        ),
    ]
    dm = s.decision_maker_first_engaged
    parts.append(
        f"decision maker first engaged: {dm.contact} ({dm.role}) at {_when(dm.at)} "
        f"in stage {dm.stage}"
        if dm
        else "decision maker first engaged: never"
    )
    if s.rubber_stamp_risk:
        r = s.rubber_stamp_risk
        parts.append(
            f"RUBBER-STAMP RISK since {_when(r.since)}: {r.reason} "
            f"(evidence {', '.join(r.evidence)})"
        )
    for c in s.champions_gone_dark:
        parts.append(
            f"CHAMPION GONE DARK: {c.contact} since {_when(c.since)} ({c.reason}; "
            f"evidence {', '.join(c.evidence)})"
        )
    return "\n\n".join(parts)


def _next_step(step: Any) -> str:
    if step is None:
        return "-"
    overdue = ", OVERDUE" if step.overdue else ""
    return f"{step.description} (due {step.due}, {step.owner or 'no owner'}{overdue})"


_MARK = {"high": "!!!", "medium": "!!", "low": "!"}


def _day(value: Any) -> str:
    return value.strftime("%a %d %b %Y %H:%M") if value is not None else "-"


def audits_text(audits: Sequence[Any]) -> str:
    if not audits:
        return "no deals to audit"
    return "\n\n\n".join(_audit_text(a) for a in audits)


def _audit_text(a: Any) -> str:
    lines = [
        f"{a.deal}  {a.name}",
        f"{a.account}, owner {a.owner}; {a.status}"
        + (f" on {_day(a.closed_at)}" if a.closed_at else "")
        + f", stage {a.stage}",
        _meta(a.meta),
    ]
    if a.status == "lost":
        lines.append(
            f"Loss reason: {a.loss_reason or '-'}; competitor: {a.competitor or '-'}"
        )
    lines += ["", f"Verdict: {a.verdict.summary}"]
    if a.verdict.lesson:
        lines.append(f"Lesson: {a.verdict.lesson}")
    lines += ["", f"Findings ({len(a.findings)}):" if a.findings else "Findings: none"]
    for f in a.findings:
        lines.append(
            f"  {_MARK[f.severity]:3} {_day(f.visible_at)}  {f.rule}: {f.sentence} "
            f"[{', '.join(f.evidence)}]"
        )
    return "\n".join(lines)


def audits_markdown(audits: Sequence[Any]) -> str:
    """A report a manager can paste into a document."""
    if not audits:
        return "# Deal audit\n\nNo deals to audit.\n"
    parts = ["# Deal audit", ""]
    if len(audits) > 1:
        parts += [
            "| Deal | Account | Owner | Status | Lesson | Top finding |",
            "|---|---|---|---|---|---|",
        ]
        for a in audits:
            top = a.verdict.top[0].sentence if a.verdict.top else "-"
            parts.append(
                f"| {_md(a.deal)} | {_md(a.account)} | {_md(a.owner)} | {a.status} "
                f"| {_md(a.verdict.lesson or '-')} | {_md(top)} |"
            )
        parts.append("")
    for a in audits:
        parts += [
            f"## {_md(a.deal)}: {_md(a.name)}",
            "",
            f"- **Account:** {_md(a.account)}; **owner:** {_md(a.owner)}",
            f"- **Status:** {a.status}"
            + (f" on {_day(a.closed_at)}" if a.closed_at else "")
            + f" (stage {a.stage})",
        ]
        if a.status == "lost":
            parts.append(
                f"- **Loss reason:** {_md(a.loss_reason or '-')}; "
                f"**competitor:** {_md(a.competitor or '-')}"
            )
        parts += [
            f"- **Lesson:** {_md(a.verdict.lesson or '-')}",
            "",
            f"**Verdict.** {_md(a.verdict.summary)}",
            "",
        ]
        if a.findings:
            parts += [
                "| When visible | Severity | Finding | Evidence |",
                "|---|---|---|---|",
            ]
            parts += [
                f"| {_day(f.visible_at)} | {f.severity} | {_md(f.sentence)} "
                f"| {_md(', '.join(f.evidence))} |"
                for f in a.findings
            ]
        else:
            parts.append("No finding fired.")
        parts += [
            "",
            f"*Rules {_md(a.meta.rules_version)} ({a.meta.rules_hash[:12]}), "
            f"evaluated at {_day(a.meta.evaluated_at)}.*",
            "",
        ]
    return "\n".join(parts)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def replay_header(r: Any) -> str:
    return f"Replay of {_meta(r.meta)}; {_count(len(r.steps), 'step')}"


def replay_step_text(step: Any) -> str:
    lines = [
        f"[{step.index}] {_day(step.at)}  {step.kind} ({step.ref}): {step.description}"
    ]
    lines += [
        f"    {c.field}: {c.before or '-'} -> {c.after or '-'}" for c in step.changes
    ]
    lines += [f"    + {f.severity}: {f.sentence}" for f in step.appeared]
    lines += [f"    - cleared: {f.sentence}" for f in step.cleared]
    lines += [f"    note from {n.author}: {n.note}" for n in step.notes]
    return "\n".join(lines)


def accounts_text(report: Any) -> str:
    header = (
        f"evaluated at {_when(report.evaluated_at)}; neglect after "
        f"{report.neglect_calendar_days} days; {report.neglected_count} neglected"
    )
    if not report.accounts:
        return header + "\n\nno accounts"
    rows = [
        (
            a.account,
            len(a.deals),
            ",".join(a.won_deals) or "-",
            _when(a.last_touch_at),
            "-" if a.days_since_touch is None else a.days_since_touch,
            "NEGLECTED" if a.neglected else "",
        )
        for a in report.accounts
    ]
    table = tabulate(
        rows,
        headers=("ACCOUNT", "DEALS", "WON", "LAST TOUCH", "DAYS SINCE", ""),
        tablefmt="plain",
    )
    return header + "\n\n" + table


def backtest_text(b: Any) -> str:
    header = (
        f"{b.deals_considered} closed deals ({b.lost_total} lost, {b.won_total} won); "
        f"rules {b.rules_version} ({b.rules_hash[:12]})"
    )
    rows = [
        (
            r.rule,
            r.fired_on_lost,
            r.fired_on_won,
            _share(r.precision),
            _share(r.recall),
            "-"
            if r.median_lead_business_days is None
            else f"{r.median_lead_business_days:g}",
        )
        for r in b.rules
    ]
    table = tabulate(
        rows,
        headers=("RULE", "LOST", "WON", "PRECISION", "RECALL", "LEAD (BUSINESS DAYS)"),
        tablefmt="plain",
    )
    return header + "\n\n" + table


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"

"""Exports: every projection as documents that name their schema.

An export of a kind (``engine.schemas.EXPORTS``) is a head, which every
document of it carries (the kind, the store position, the rule set, the
query asked and what the kind adds), and a stream of items. As JSON it is
one document: the head, with every item in ``items``. As NDJSON it is one
document per line: the head and one item side by side. Each names its
schema in ``$schema``. Keys are sorted and items come in a stable order, so
the same store and query give the same bytes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel

from engine.application import filter_timeline
from engine.errors import InputError
from engine.projections.gaps import follow_up_gaps
from engine.projections.prepare import prepare
from engine.projections.stakeholders import stakeholder_involvement
from engine.schemas import (
    EXPORTS,
    SCHEMA_BASE,
    AuditItem,
    DealItem,
    ExportFormat,
    GapsItem,
    ReplayItem,
    StakeholdersItem,
)

if TYPE_CHECKING:
    from engine.application import Analysis, DealTrail
    from engine.persistence import Recorded
    from engine.projections.summary import DealSummary
    from engine.rules import RuleSet

KINDS = tuple(EXPORTS)
# Filters that pick deals; they make no sense next to one --deal.
_SELECTION = ("status", "owner", "account", "lost", "since")


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """What to export; a filter left None (or False) is not applied."""

    deal: str | None = None
    status: str | None = None
    owner: str | None = None
    account: str | None = None
    lost: bool = False
    neglected: bool = False
    since: date | None = None
    as_of: datetime | None = None
    as_known_at: datetime | None = None
    at: datetime | None = None

    def given(self) -> list[str]:
        """The names of the filters that are set."""
        return [
            f.name for f in fields(self) if getattr(self, f.name) not in (None, False)
        ]


@dataclass(frozen=True, slots=True)
class Export:
    """A head and its items, both JSON-ready; items are computed as read."""

    format: ExportFormat
    head: dict[str, Any]
    items: Iterable[dict[str, Any]]


def export(app: DealTrail, kind: str, query: ExportQuery, rules: RuleSet) -> Export:
    """Prepare an export of ``kind``.

    Whatever can fail on the query (an unknown deal, a filter that does not
    apply, a time before the deal opened) fails here, before anything is
    written. Without ``query.deal`` a per-deal kind covers every deal the
    filters select, in key order, leaving out deals not yet opened (or not
    yet known) at the time asked.
    """
    form = EXPORTS.get(kind)
    if form is None:
        raise InputError(f"unknown export kind {kind!r}; one of {', '.join(KINDS)}")
    _check(form, query)
    position, context, items = _BUILDERS[kind](app, query, rules)
    head = form.head.model_validate(
        {
            "kind": kind,
            "position": position,
            "rules_hash": rules.rules_hash,
            "rules_version": rules.version,
            "query": {name: getattr(query, name) for name in form.filters},
            "chain": _chain_head(app, query.deal, position),
            **context,
        }
    )
    return Export(form, head.model_dump(mode="json"), items)


def _chain_head(app: DealTrail, deal: str | None, position: int) -> Any:
    """The tamper-evidence anchor an export carries: the chain head, as
    stored at the export's position, of its one deal or of the store."""
    anchor = app.chain_head(deal, at=position)
    return None if anchor is None else asdict(anchor)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check(form: ExportFormat, query: ExportQuery) -> None:
    given = query.given()
    for name in given:
        if name not in form.filters:
            raise InputError(f"{_option(name)} does not apply to {form.kind} exports")
    if query.status not in (None, "open", "won", "lost"):
        raise InputError(f"--status: {query.status!r} is not open, won or lost")
    selecting = [_option(n) for n in given if n in _SELECTION]
    if query.deal is not None and selecting:
        raise InputError(f"--deal exports one deal; leave out {', '.join(selecting)}")
    if form.kind == "audit" and query.lost and query.status not in (None, "lost"):
        raise InputError(f"--lost and --status {query.status} contradict")


# What a builder returns: the position, what the kind adds to the head, items.
Built = tuple[int, dict[str, Any], Iterable[dict[str, Any]]]
Builder = Callable[["DealTrail", ExportQuery, "RuleSet"], Built]


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _events(app: DealTrail, query: ExportQuery, rules: RuleSet) -> Built:
    position = app.position()
    if query.deal is not None:
        # Recording order: importing the items decides them again the same way.
        records: Iterable[Recorded] = app.timeline(
            query.deal,
            as_of=query.as_of,
            as_known_at=query.as_known_at,
            recording_order=True,
        )
    else:
        records = _filtered(app.stored_events(until=position), query)
    return position, {}, (_event_item(r) for r in records)


def _filtered(records: Iterator[Recorded], query: ExportQuery) -> Iterator[Recorded]:
    while chunk := list(islice(records, 1000)):
        yield from filter_timeline(
            chunk, as_of=query.as_of, as_known_at=query.as_known_at, sort=False
        )


def _event_item(recorded: Recorded) -> dict[str, Any]:
    event = recorded.event.model_dump(mode="json", exclude_none=True)
    return {
        "deal": recorded.event.deal,
        "version": recorded.originator_version,
        "recorded_at": event.pop("recorded_at"),
        "event": event,  # now the native line
    }


def _deals(app: DealTrail, query: ExportQuery, rules: RuleSet) -> Built:
    listed = app.summaries(
        rules, status=query.status, owner=query.owner, account=query.account
    )
    at = query.at or app.now()
    items = (
        _dump(DealItem(deal=s.deal, flags=s.flags_at(at), summary=s))
        for s in sorted(listed.result, key=lambda s: s.deal)
        if _opened_by(app, s, at)
    )
    return listed.position, {"evaluated_at": at}, items


def _opened_by(app: DealTrail, summary: DealSummary, at: datetime) -> bool:
    """Whether the deal had opened by ``at``. A deal whose latest event is
    no later opened before it, so only the others' histories are read."""
    return summary.evaluated_at <= at or _opened_by_key(app, summary.deal, at)


def _opened_by_key(app: DealTrail, key: str, at: datetime) -> bool:
    try:
        prepare(app.history(key), as_of=at)
    except ValueError:
        return False
    return True


OneDeal = Callable[["DealTrail", ExportQuery, "RuleSet", str], "Analysis[Any]"]


def _per_deal(one: OneDeal, item: Callable[[str, Any], BaseModel]) -> Builder:
    """A builder running ``one`` over --deal, or every selected deal."""

    def build(app: DealTrail, query: ExportQuery, rules: RuleSet) -> Built:
        if query.deal is not None:
            analysis = one(app, query, rules, query.deal)
            return analysis.position, {}, [_dump(item(query.deal, analysis.result))]
        position = app.position()
        keys = _selected_keys(app, query, rules)
        return position, {}, _each(app, query, rules, keys, one, item)

    return build


def _selected_keys(app: DealTrail, query: ExportQuery, rules: RuleSet) -> list[str]:
    if query.status is None and query.owner is None and query.account is None:
        return app.deal_keys()
    listed = app.summaries(
        rules, status=query.status, owner=query.owner, account=query.account
    )
    return sorted(s.deal for s in listed.result)


def _each(
    app: DealTrail,
    query: ExportQuery,
    rules: RuleSet,
    keys: list[str],
    one: OneDeal,
    item: Callable[[str, Any], BaseModel],
) -> Iterator[dict[str, Any]]:
    for key in keys:
        try:
            analysis = one(app, query, rules, key)
        except InputError:
            continue  # not opened, or not known, at the time asked
        yield _dump(item(key, analysis.result))


def _analysis(projection: Callable[..., Any]) -> OneDeal:
    def one(app: DealTrail, query: ExportQuery, rules: RuleSet, key: str) -> Any:
        return app.analyse(
            key,
            projection,
            rules=rules,
            at=query.at,
            as_of=query.as_of,
            as_known_at=query.as_known_at,
        )

    return one


def _replay_one(
    app: DealTrail, query: ExportQuery, rules: RuleSet, key: str
) -> Analysis[Any]:
    analysis = app.replay(key, rules, until=query.as_of, as_known_at=query.as_known_at)
    if query.as_of is not None and not _opened_by_key(app, key, query.as_of):
        raise InputError(f"deal {key!r} had not been opened at that time")
    return analysis


def _audit(app: DealTrail, query: ExportQuery, rules: RuleSet) -> Built:
    if query.deal is not None:
        one = app.audit(query.deal, rules, at=query.at, as_known_at=query.as_known_at)
        audits, position = [one.result], one.position
    else:
        many = app.audits(
            rules,
            status="lost" if query.lost else query.status,
            since=query.since,
            owner=query.owner,
            account=query.account,
            at=query.at,
            as_known_at=query.as_known_at,
        )
        audits, position = sorted(many.result, key=lambda a: a.deal), many.position
    return position, {}, (_dump(AuditItem(deal=a.deal, audit=a)) for a in audits)


def _accounts(app: DealTrail, query: ExportQuery, rules: RuleSet) -> Built:
    analysis = app.accounts(rules, at=query.at)
    report = analysis.result
    context = {
        "evaluated_at": report.evaluated_at,
        "timezone": report.timezone,
        "neglect_calendar_days": report.neglect_calendar_days,
        "neglected_count": report.neglected_count,
    }
    rows = (_dump(a) for a in report.accounts if a.neglected or not query.neglected)
    return analysis.position, context, rows


def _backtest(app: DealTrail, query: ExportQuery, rules: RuleSet) -> Built:
    analysis = app.backtest(rules, since=query.since)
    result = analysis.result
    context = {
        "deals_considered": result.deals_considered,
        "open_excluded": result.open_excluded,
        "before_since_excluded": result.before_since_excluded,
    }
    return analysis.position, context, (_dump(r) for r in result.rules)


_BUILDERS: dict[str, Builder] = {
    "events": _events,
    "deals": _deals,
    "gaps": _per_deal(
        _analysis(follow_up_gaps), lambda key, r: GapsItem(deal=key, gaps=r)
    ),
    "stakeholders": _per_deal(
        _analysis(stakeholder_involvement),
        lambda key, r: StakeholdersItem(deal=key, stakeholders=r),
    ),
    "audit": _audit,
    "replay": _per_deal(_replay_one, lambda key, r: ReplayItem(deal=key, replay=r)),
    "accounts": _accounts,
    "backtest": _backtest,
}


# Writing

_SORTED = orjson.OPT_SORT_KEYS


def write_ndjson(export: Export, out: IO[bytes]) -> int:
    """One document per line, each the head and one item; returns the count."""
    head = export.head | {"$schema": SCHEMA_BASE + export.format.line_name}
    count = 0
    for item in export.items:
        out.write(orjson.dumps(head | item, option=_SORTED) + b"\n")
        count += 1
    return count


def write_json(export: Export, out: IO[bytes]) -> int:
    """One document, the items in ``items``; returns the item count.

    Written item by item, so a large export is never whole in memory; the
    bytes are those orjson writes for the whole document with sorted keys.
    """
    head = export.head | {"$schema": SCHEMA_BASE + export.format.document_name}
    count = 0
    out.write(b"{")
    for index, key in enumerate(sorted([*head, "items"])):
        out.write((b"," if index else b"") + orjson.dumps(key) + b":")
        if key != "items":
            out.write(orjson.dumps(head[key], option=_SORTED))
            continue
        out.write(b"[")
        for item in export.items:
            out.write((b"," if count else b"") + orjson.dumps(item, option=_SORTED))
            count += 1
        out.write(b"]")
    out.write(b"}\n")
    return count


def write_atomically(path: Path, write: Callable[[IO[bytes]], int]) -> int:
    """Write ``path`` through a temporary file in its folder, renamed into
    place only once ``write`` succeeds: a failed export leaves no file, or
    the old one intact. A new file is private to its owner, like the store;
    a replaced one keeps its permissions."""
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = None
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed below
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        )
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}") from None
    temporary = Path(handle.name)
    try:
        with handle:
            count = write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            temporary.chmod(mode)
        temporary.replace(path)
    except OSError as e:
        temporary.unlink(missing_ok=True)
        raise InputError(f"cannot write {path}: {e.strerror or e}") from e
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return count

"""One self-contained HTML page per deal, and an index of pages.

The timeline is inline SVG laid out here (deterministic: fixed sizes,
coordinates rounded to a tenth of a unit); the page's replay reads the steps
embedded as JSON. No network access, no external fonts, images or scripts:
the page works offline from disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from engine.report.model import CLOCKS, Lane, Mark, Report, Span, Step

__all__ = ["IndexEntry", "page_file_names", "render_index", "render_page"]

# The drawing's units (the SVG scales to the page width).
WIDTH = 1000
X0, X1 = 196.0, 985.0
AXIS_HEIGHT = 44.0
LANE_HEIGHT = 32.0
ROW_HEIGHT = 22.0
LABEL_CHARS, DETAIL_CHARS = 26, 36
# The veil over what lies after the replay's step starts this far right of
# the step, so that the step's own mark stays clear.
VEIL_GAP = 8
# Roughly how wide a character of the band labels is, in units.
CHAR_WIDTH = 6.0


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One deal on the index page: its report and the file it is in."""

    href: str
    report: Report


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("engine.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_page(
    report: Report, *, position: int | None = None, index_href: str | None = None
) -> str:
    """The page of one deal; ``position`` is the store position it was read
    at, ``index_href`` links back to an index page."""
    chart = _Chart(report)
    return (
        _env()
        .get_template("page.html.j2")
        .render(
            r=report,
            chart=chart,
            legend=_legend(),
            first=report.steps["occurred"][-1],
            data=_json(_data(report, chart)),
            position=position,
            index_href=index_href,
            severity_marks=SEVERITY_MARKS,
        )
    )


def render_index(entries: Sequence[IndexEntry], *, title: str) -> str:
    """The index page: every deal with its lesson and top warning signs."""
    rows = []
    for entry in entries:
        r = entry.report
        numbered = {f.number: f for f in r.findings}
        top = [numbered[n] for n in r.top]
        rows.append({"href": entry.href, "r": r, "top": top})
    return (
        _env()
        .get_template("index.html.j2")
        .render(title=title, rows=rows, severity_marks=SEVERITY_MARKS)
    )


SEVERITY_MARKS = {"high": "!!!", "medium": "!!", "low": "!"}
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


def page_file_names(keys: Sequence[str]) -> dict[str, str]:
    """A file name for each deal's page, beside ``index.html``.

    A key that is a plain file name keeps its spelling; any other key, and
    keys that would clash on a case-insensitive file system, get a slug
    plus a short hash of the key.
    """

    def hashed(key: str) -> str:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip("-.")[:60] or "deal"
        digest = hashlib.blake2b(key.encode(), digest_size=4).hexdigest()
        return f"{slug}-{digest}.html"

    names = {
        key: f"{key}.html" if _SAFE_NAME.fullmatch(key) else hashed(key) for key in keys
    }
    folded = Counter(name.lower() for name in names.values())
    folded["index.html"] += 1
    return {
        key: hashed(key) if folded[name.lower()] > 1 else name
        for key, name in names.items()
    }


# -- the data the page's script reads -----------------------------------------


def _data(report: Report, chart: _Chart) -> dict[str, Any]:
    clocks = {
        clock: [_step(step, chart) for step in report.steps[clock]] for clock in CLOCKS
    }
    details = {
        m.id: {"label": m.label, "details": list(m.details)} for m in report.marks
    }
    details |= {
        s.id: {"label": s.label, "details": list(s.details)}
        for s in report.spans
        if s.focusable
    }
    return {"clocks": clocks, "marks": details}


def _step(step: Step, chart: _Chart) -> dict[str, Any]:
    found = dataclasses.asdict(step)
    found["t"] = _epoch(step)
    found["x"] = chart.x(step.fraction)
    return found


def _epoch(item: Step | Mark | Span) -> int:
    moment = item.at if isinstance(item, Step) else item.occurred
    return math.floor(moment.timestamp())


def _json(data: dict[str, Any]) -> Markup:
    """JSON safe inside a script element: no ``<``, ``>`` or ``&`` left."""
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return Markup(text)


# -- shapes ----------------------------------------------------------------------


def _n(value: float) -> str:
    """A coordinate as the SVG writes it: one decimal, no ``-0``."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _polygon(points: Sequence[tuple[float, float]]) -> str:
    return "M" + "L".join(f"{_n(x)},{_n(y)}" for x, y in points) + "Z"


def _regular(sides: int, radius: float, turn: float = -90.0) -> str:
    return _polygon(
        [
            (
                radius * math.cos(math.radians(turn + 360 * i / sides)),
                radius * math.sin(math.radians(turn + 360 * i / sides)),
            )
            for i in range(sides)
        ]
    )


def _star(outer: float, inner: float) -> str:
    return _polygon(
        [
            (
                (outer if i % 2 == 0 else inner) * math.cos(math.radians(-90 + 36 * i)),
                (outer if i % 2 == 0 else inner) * math.sin(math.radians(-90 + 36 * i)),
            )
            for i in range(10)
        ]
    )


def _circle(radius: float) -> str:
    r = _n(radius)
    return f"M-{r},0A{r},{r} 0 1,0 {r},0A{r},{r} 0 1,0 -{r},0Z"


#: A touch's shape says its channel.
CHANNEL_SHAPES: dict[str, str] = {
    "email": "M-5.5,-5H5.5V5H-5.5Z",
    "call": _circle(5.8),
    "meeting": _polygon([(0, -7), (6.5, 5), (-6.5, 5)]),
    "demo": _polygon([(0, -7), (7, 0), (0, 7), (-7, 0)]),
    "message": _polygon([(-6.5, -5), (6.5, -5), (0, 7)]),
    "proposal": "M-5,-6.5H2L5,-3.5V6.5H-5Z",
    "social": _star(7.5, 3.2),
    "event": _regular(6, 6.5),
    "other": _polygon(
        [
            (-2, -6.5),
            (2, -6.5),
            (2, -2),
            (6.5, -2),
            (6.5, 2),
            (2, 2),
            (2, 6.5),
            (-2, 6.5),
            (-2, 2),
            (-6.5, 2),
            (-6.5, -2),
            (-2, -2),
        ]
    ),
}

#: Promise statuses: a circle, and what it holds.
STATUS_GLYPHS: dict[str, str] = {
    "kept": "M-3,0.2L-0.8,2.6L3.2,-2.6",
    "late": "M0,-3.6V0H3",
    "missed": "M-2.8,-2.8L2.8,2.8M-2.8,2.8L2.8,-2.8",
    "renegotiated": "M-3.4,0H3.4",
    "pending": "",
}

#: Deal and stakeholder events, coaching notes, a cleared next step.
EVENT_SHAPES: dict[str, str] = {
    "opened": "M-4,-6L6,0L-4,6Z",
    "stage": "M-1.5,-8H1.5V8H-1.5Z",
    "slip": "M-6,-2.2H1.5V-5.5L7,0L1.5,5.5V2.2H-6Z",
    "amount": _regular(4, 6.0),
    "won": _star(7.5, 3.5),
    "lost": "M-6,-6H6V6H-6Z",
    "reopened": "M-6,-5L0,0L-6,5M0,-5L6,0L0,5",
    "joined": "M-4.5,0H4.5M0,-4.5V4.5",
    "role": "M0,5V-5M-3.5,-1.5L0,-5L3.5,-1.5",
    "left": "M-4.5,0H3.5M3.5,-4.5V4.5",
    "priority": "M-4,-5.5H4V5.5L0,2.2L-4,5.5Z",
    "note": "M-5.5,-4.5H5.5V2.5H0L-3,5.5V2.5H-5.5Z",
    "cleared": "M-4,-4L4,4M-4,4L4,-4",
}
#: Event shapes drawn as lines only.
OPEN_SHAPES = frozenset({"reopened", "joined", "role", "left", "cleared"})
LOST_CROSS = "M-3.5,-3.5L3.5,3.5M-3.5,3.5L3.5,-3.5"
FLAG = "M0,-9L11,-5.5L0,-2Z"


def shape_of(mark: Mark) -> str:
    if mark.kind == "touch":
        return CHANNEL_SHAPES.get(mark.symbol, CHANNEL_SHAPES["other"])
    if mark.kind == "flag":
        return FLAG
    if mark.kind == "due":
        return _circle(5.5)
    return EVENT_SHAPES.get(mark.symbol, EVENT_SHAPES["stage"])


def inner_of(mark: Mark) -> str:
    """What is drawn inside the shape: a status glyph, the cross of a loss
    or of an unanswered attempt."""
    if mark.kind == "due":
        return STATUS_GLYPHS.get(mark.symbol, "")
    if mark.symbol == "lost" and mark.kind == "deal":
        return LOST_CROSS
    if mark.crossed:
        return "M-8,8L8,-8"
    return ""


# -- the chart --------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Chart:
    """The timeline's geometry, ready for the template."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.lanes: list[dict[str, Any]] = []
        self.top: dict[str, float] = {}
        y = AXIS_HEIGHT
        group = None
        for lane in report.lanes:
            height = max(LANE_HEIGHT, lane.rows * ROW_HEIGHT + 8)
            self.top[lane.id] = y
            starts_group = lane.kind == "contact" and lane.group != group
            if lane.kind == "contact":
                group = lane.group
            self.lanes.append(self._lane(lane, y, height, starts_group))
            y += height
        self.bottom = y
        self.height = y + 6
        self.rows = {lane.id: lane.rows for lane in report.lanes}
        self.width = WIDTH
        self.axis_y = AXIS_HEIGHT
        self.x0 = X0
        self.veil_gap = VEIL_GAP

    def x(self, fraction: float) -> float:
        return round(X0 + fraction * (X1 - X0), 1)

    def y(self, lane: str, row: int = 0) -> float:
        rows = self.rows.get(lane, 1)
        top = self.top.get(lane, AXIS_HEIGHT)
        if rows == 1:
            return round(top + LANE_HEIGHT / 2, 1)
        return round(top + 4 + ROW_HEIGHT * row + ROW_HEIGHT / 2, 1)

    def _lane(
        self, lane: Lane, y: float, height: float, starts: bool
    ) -> dict[str, Any]:
        return {
            "lane": lane,
            "y": _n(y),
            "height": _n(height),
            "label": _cut(lane.label, LABEL_CHARS),
            "detail": _cut(lane.detail, DETAIL_CHARS),
            "label_y": _n(y + 13),
            "detail_y": _n(y + 25),
            "line_y": _n(y + height),
            "starts_group": starts,
            "kind": lane.kind,
        }

    # -- parts the template draws --

    def ticks(self) -> list[dict[str, str]]:
        return [
            {"x": _n(self.x(t.fraction)), "label": t.label}
            for t in self.report.axis.ticks
        ]

    def closed_days(self) -> list[dict[str, str]]:
        return [
            {"x": _n(self.x(a)), "width": _n(self.x(b) - self.x(a))}
            for a, b in self.report.axis.closed_days
        ]

    def bands(self) -> list[dict[str, Any]]:
        found = []
        for band in self.report.bands:
            left, right = self.x(band.start), self.x(band.end)
            width = right - left
            chars = int((width - 6) // CHAR_WIDTH)
            name = band.stage.replace("_", " ")
            found.append(
                {
                    "band": band,
                    "x": _n(left),
                    "width": _n(width),
                    "text": _cut(name, chars) if chars >= 3 else "",
                    "text_x": _n(left + 3),
                    "occurred": math.floor(band.occurred.timestamp()),
                    "known": math.floor(band.known.timestamp()),
                }
            )
        return found

    def spans(self, background: bool) -> list[dict[str, Any]]:
        found = []
        for span in self.report.spans:
            if (span.kind in ("pause", "dark")) != background:
                continue
            left, right = self.x(span.start), self.x(span.end)
            width = max(right - left, 2.0)
            if background:
                top = self.top[span.lane] + 2
                height = (self.y(span.lane) - top) * 2
            else:
                height = 8.0 if span.kind == "obligation" else 3.0
                top = self.y(span.lane, span.row) - height / 2
            deadline = None if span.deadline is None else self.x(span.deadline)
            # A label goes before the span when it would run off the drawing,
            # or into the time after the evaluation (an open span ends there).
            room = len(span.text) * CHAR_WIDTH
            fits_after = left + width + 4 + room <= WIDTH - 2
            fits_before = left - 4 - room >= X0
            after = fits_after and (not span.open or not fits_before)
            found.append(
                {
                    "span": span,
                    "x": _n(left),
                    "y": _n(top),
                    "width": _n(width),
                    "height": _n(height),
                    "deadline": None if deadline is None else _n(deadline),
                    "tick_top": _n(top - 3),
                    "tick_bottom": _n(top + height + 3),
                    "text_x": _n(left + width + 4 if after else left - 4),
                    "text_anchor": "start" if after else "end",
                    "text_y": _n(top + height / 2 + 3.5),
                    "occurred": _epoch(span),
                    "known": math.floor(span.known.timestamp()),
                }
            )
        return found

    def marks(self) -> list[dict[str, Any]]:
        found = []
        for mark in self.report.marks:
            x = self.x(mark.fraction)
            if mark.kind == "note":
                # Above the touch it is pinned to, side by side when several.
                x += 9 * mark.row
                points = [(x, self.y(mark.lanes[0]) - 11)]
            else:
                points = [(x, self.y(lane, mark.row)) for lane in mark.lanes]
            ys = [y for _, y in points]
            found.append(
                {
                    "mark": mark,
                    "points": [(_n(px), _n(py)) for px, py in points],
                    "shape": shape_of(mark),
                    "inner": inner_of(mark),
                    "outline": mark.symbol in OPEN_SHAPES,
                    "link": (_n(x), _n(min(ys)), _n(max(ys))) if len(ys) > 1 else None,
                    "text_x": _n(x + (13 if mark.kind == "flag" else 9)),
                    "text_y": _n(points[0][1] + (-3 if mark.kind == "flag" else 3.5)),
                    "occurred": _epoch(mark),
                    "known": math.floor(mark.known.timestamp()),
                    "evidence": " ".join(mark.evidence),
                    "pole_top": _n(points[0][1] - 9),
                    "pole_bottom": _n(points[0][1] + 8),
                }
            )
        return found

    def foreground(self) -> list[tuple[str, dict[str, Any]]]:
        """Obligations, promises and marks in time order: the order they
        are painted in and that keyboard focus walks."""
        items = [
            (s["span"].start, 0, i, "span", s) for i, s in enumerate(self.spans(False))
        ]
        items += [
            (m["mark"].fraction, 1, i, "mark", m) for i, m in enumerate(self.marks())
        ]
        return [(kind, item) for *_, kind, item in sorted(items, key=lambda e: e[:3])]

    def evaluated(self) -> str:
        return _n(self.x(self.report.axis.evaluated))

    def cursor(self) -> str:
        return _n(self._cursor())

    def veil_x(self) -> str:
        return _n(self._cursor() + VEIL_GAP)

    def veil_width(self) -> str:
        return _n(max(WIDTH - self._cursor() - VEIL_GAP, 0.0))

    def _cursor(self) -> float:
        return self.x(self.report.steps["occurred"][-1].fraction)


# -- the legend -------------------------------------------------------------------


def _legend() -> dict[str, Any]:
    """The legend's entries: label and how it is drawn."""
    channels = [
        {"label": name, "shape": CHANNEL_SHAPES[name]}
        for name in (
            "email",
            "call",
            "meeting",
            "demo",
            "message",
            "proposal",
            "social",
            "event",
            "other",
        )
    ]
    statuses = [
        {"label": name, "shape": _circle(5.5), "inner": STATUS_GLYPHS[name]}
        for name in ("kept", "late", "missed", "renegotiated", "pending")
    ]
    events = [
        {"label": label, "symbol": symbol, "shape": EVENT_SHAPES[symbol]}
        for symbol, label in (
            ("opened", "deal opened"),
            ("stage", "stage change"),
            ("slip", "close-date slip"),
            ("won", "won"),
            ("lost", "lost"),
            ("joined", "joined"),
            ("priority", "priority noted"),
            ("note", "coaching note"),
        )
    ]
    return {
        "channels": channels,
        "statuses": statuses,
        "events": events,
        "flag": FLAG,
        "square": CHANNEL_SHAPES["email"],
        "cross": "M-8,8L8,-8",
        "open_shapes": OPEN_SHAPES,
    }

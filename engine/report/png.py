"""A static picture of a deal's timeline, to paste into documents.

The same lanes and the same idea as the page: a touch's marker shape says
its channel and its fill the direction (filled: the buyer reached out,
hollow: the seller did); warning signs are flags numbered as on the page.
Drawn with matplotlib's Agg backend; the PNG carries no software or date
metadata, so the same report gives the same bytes.
"""

from __future__ import annotations

import io
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.path import Path as MarkerPath

from engine.report.model import Lane, Mark, Report, Span

__all__ = ["render_png"]

#: A touch's marker says its channel (matplotlib marker codes).
CHANNEL_MARKERS: dict[str, str] = {
    "email": "s",
    "call": "o",
    "meeting": "^",
    "demo": "D",
    "message": "v",
    "proposal": "p",
    "social": "*",
    "event": "h",
    "other": "P",
}
EVENT_MARKERS: dict[str, str] = {
    "opened": ">",
    "stage": "|",
    "slip": "4",
    "amount": "d",
    "won": "*",
    "lost": "X",
    "reopened": "3",
    "joined": "+",
    "role": "2",
    "left": "_",
    "priority": "d",
    "cleared": "x",
}
FLAG = MarkerPath(
    [(0, -1.0), (0, 1.0), (1.2, 0.6), (0, 0.2)],
    [MarkerPath.MOVETO, MarkerPath.LINETO, MarkerPath.LINETO, MarkerPath.LINETO],
)
NOTE = MarkerPath(
    [
        (-1, -0.3),
        (1, -0.3),
        (1, 0.9),
        (-1, 0.9),
        (-1, -0.3),
        (-0.5, -0.3),
        (-0.8, -0.9),
    ],
    None,
)
INK, BUYER, SELLER, MUTED = "#1d2329", "#1f4e79", "#b4530f", "#5b6670"
SEVERITY = {"high": "#a4161a", "medium": "#b7791f", "low": "#ffffff"}
FillStyle = Literal["full", "left", "right", "bottom", "top", "none"]
STATUS: dict[str, tuple[str, FillStyle, str]] = {
    "kept": ("o", "full", "#2e7d32"),
    "late": ("o", "left", "#b7791f"),
    "missed": ("X", "full", "#a4161a"),
    "renegotiated": ("_", "full", MUTED),
    "pending": ("o", "none", "#1565c0"),
}
OBLIGATION = {"met": "#cfd8df", "breached": "#f3c1c1", "open": "#ffffff"}
ROW = 0.7
DPI = 100


def render_png(report: Report) -> bytes:
    """The PNG bytes of ``report``'s timeline."""
    with plt.rc_context(
        {
            "text.parse_math": False,
            "font.family": "DejaVu Sans",
            "font.size": 9,
            "hatch.linewidth": 0.8,
            "svg.hashsalt": "dealtrail",
        }
    ):
        figure = _draw(report)
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


class _Layout:
    """Each lane's band of y (top down) and each row's centre."""

    def __init__(self, lanes: tuple[Lane, ...]) -> None:
        self.top: dict[str, float] = {}
        self.height: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        y = 0.0
        for lane in lanes:
            height = 1.0 if lane.rows == 1 else lane.rows * ROW + 0.3
            self.top[lane.id], self.height[lane.id] = y, height
            self.rows[lane.id] = lane.rows
            y += height
        self.bottom = y

    def y(self, lane: str, row: int = 0) -> float:
        if self.rows.get(lane, 1) == 1:
            return self.top[lane] + 0.5
        return self.top[lane] + 0.15 + ROW * row + ROW / 2


def _draw(report: Report) -> Figure:
    layout = _Layout(report.lanes)
    figure = Figure(figsize=(16, 1.9 + 0.34 * layout.bottom))
    axes = figure.add_axes((0.14, 0.2, 0.84, 0.7))
    axes.set_xlim(0, 1)
    axes.set_ylim(layout.bottom, -0.9)
    axes.set_yticks(
        [
            layout.y(lane.id) if lane.rows == 1 else layout.top[lane.id] + 0.5
            for lane in report.lanes
        ]
    )
    axes.set_yticklabels([lane.label[:28] for lane in report.lanes])
    labelled = [t for t in report.axis.ticks if t.label]
    axes.set_xticks([t.fraction for t in labelled])
    axes.set_xticklabels([t.label for t in labelled])
    axes.tick_params(axis="both", length=0)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    for start, end in report.axis.closed_days:
        axes.axvspan(start, end, color="#000000", alpha=0.05, linewidth=0)
    for band in report.bands:
        face = "#eceff2" if band.closed else ("#f3f6f9", "#e3e9ef")[band.shade]
        axes.axvspan(
            band.start,
            band.end,
            facecolor=face,
            hatch="//" if band.closed else None,
            edgecolor="#c2cad2",
            linewidth=0,
            zorder=0,
        )
        axes.axvline(band.start, color="#9aa8b5", linestyle=":", linewidth=0.8)
        # About 0.0048 of the axis per character at this size.
        room = int((band.end - band.start - 0.004) / 0.0048)
        name = band.stage.replace("_", " ")
        if room >= 3:
            axes.text(
                band.start + 0.003,
                -0.35,
                name if len(name) <= room else name[: room - 1] + "…",
                fontsize=8,
                fontweight="bold",
                color="#34495e",
                clip_on=True,
            )
    for lane in report.lanes:
        axes.axhline(
            layout.top[lane.id] + layout.height[lane.id],
            color="#c9d1d8",
            linewidth=0.6,
        )
    for span in report.spans:
        _span(axes, layout, span)
    for mark in report.marks:
        _mark(axes, layout, mark)
    axes.axvline(report.axis.evaluated, color=INK, linestyle="--", linewidth=1)
    axes.set_title(
        f"{report.deal}: {report.name} ({report.outcome})",
        loc="left",
        fontsize=11,
        fontweight="bold",
    )
    figure.legend(
        handles=_legend(),
        loc="lower center",
        ncol=9,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.56, 0.0),
    )
    return figure


def _span(axes: Any, layout: _Layout, span: Span) -> None:
    width = max(span.end - span.start, 0.002)
    if span.kind in ("pause", "dark"):
        top = layout.top[span.lane] + 0.08
        axes.add_patch(
            Rectangle(
                (span.start, top),
                width,
                layout.height[span.lane] - 0.16,
                facecolor="#eef5fc" if span.kind == "pause" else "#e4e7ea",
                edgecolor="#5b8fc7" if span.kind == "pause" else "#52606d",
                hatch=".." if span.kind == "pause" else "xx",
                linewidth=0.6,
                zorder=1,
            )
        )
        return
    y = layout.y(span.lane, span.row)
    if span.kind == "promise":
        axes.plot([span.start, span.start + width], [y, y], color=MUTED, linewidth=2)
        return
    breached = span.style == "breached"
    axes.add_patch(
        Rectangle(
            (span.start, y - 0.15),
            width,
            0.3,
            facecolor=OBLIGATION.get(span.style, "#ffffff"),
            edgecolor="#a4161a" if breached else INK,
            hatch="////" if breached else None,
            linestyle="--" if span.open else "-",
            linewidth=0.8,
            zorder=2,
        )
    )
    if span.deadline is not None:
        axes.plot([span.deadline] * 2, [y - 0.25, y + 0.25], color=INK, linewidth=1)
    if span.text:
        axes.text(
            span.start + width + 0.004,
            y,
            span.text,
            va="center",
            fontsize=7.5,
            fontweight="bold",
            color="#a4161a",
        )


def _mark(axes: Any, layout: _Layout, mark: Mark) -> None:
    if mark.kind == "touch":
        ys = [layout.y(lane) for lane in mark.lanes]
        if len(ys) > 1:
            axes.plot(
                [mark.fraction] * 2,
                [min(ys), max(ys)],
                color="#8a99a6",
                linestyle=":",
                linewidth=0.8,
            )
        inbound = mark.style == "inbound"
        for y in ys:
            axes.plot(
                mark.fraction,
                y,
                marker=CHANNEL_MARKERS.get(mark.symbol, "P"),
                markersize=8,
                markerfacecolor=BUYER if inbound else "#ffffff",
                markeredgecolor=BUYER
                if inbound
                else (SELLER if mark.style == "outbound" else MUTED),
                markeredgewidth=1.4,
                zorder=4,
            )
            if mark.crossed:
                axes.plot(
                    mark.fraction, y, marker="x", markersize=9, color=INK, zorder=5
                )
        return
    y = layout.y(mark.lanes[0], mark.row)
    if mark.kind == "flag":
        axes.plot(
            mark.fraction,
            y,
            marker=FLAG,
            markersize=14,
            markerfacecolor=SEVERITY.get(mark.style, "#ffffff"),
            markeredgecolor=INK,
            markeredgewidth=1,
            zorder=4,
        )
        axes.text(
            mark.fraction + 0.008, y - 0.1, mark.text, fontsize=8, fontweight="bold"
        )
    elif mark.kind == "due":
        marker, fill, color = STATUS.get(mark.style, STATUS["pending"])
        axes.plot(
            mark.fraction,
            y,
            marker=marker,
            fillstyle=fill,
            markersize=8,
            color=color,
            markerfacecoloralt="#ffffff",
            markeredgewidth=1.4,
            zorder=4,
        )
    elif mark.kind == "note":
        axes.plot(
            mark.fraction + 0.006 * mark.row,
            y - 0.38,
            marker=NOTE,
            markersize=9,
            markerfacecolor="#fff3b0",
            markeredgecolor="#6b5a00",
            zorder=5,
        )
    else:
        axes.plot(
            mark.fraction,
            y,
            marker=EVENT_MARKERS.get(mark.symbol, "|"),
            markersize=8,
            color="#a4161a" if mark.symbol == "lost" else "#52606d",
            markeredgewidth=1.6,
            zorder=3,
        )
        if mark.text:
            axes.text(mark.fraction + 0.008, y + 0.12, mark.text, fontsize=7.5)


def _legend() -> list[Any]:
    def touch(channel: str, label: str) -> Line2D:
        return Line2D(
            [],
            [],
            linestyle="none",
            marker=CHANNEL_MARKERS[channel],
            markerfacecolor="#ffffff",
            markeredgecolor=INK,
            label=label,
        )

    handles: list[Any] = [touch(c, c) for c in CHANNEL_MARKERS]
    handles += [
        Line2D(
            [], [], linestyle="none", marker="s", color=BUYER, label="filled: buyer"
        ),
        Line2D(
            [],
            [],
            linestyle="none",
            marker="s",
            markerfacecolor="#ffffff",
            markeredgecolor=SELLER,
            label="hollow: seller",
        ),
        Line2D([], [], linestyle="none", marker="x", color=INK, label="unanswered"),
    ]
    handles += [
        Line2D(
            [],
            [],
            linestyle="none",
            marker=marker,
            fillstyle=fill,
            color=color,
            markerfacecoloralt="#ffffff",
            label=f"promise {status}",
        )
        for status, (marker, fill, color) in STATUS.items()
    ]
    handles += [
        Patch(facecolor=OBLIGATION["met"], edgecolor=INK, label="follow-up met"),
        Patch(
            facecolor=OBLIGATION["breached"],
            edgecolor="#a4161a",
            hatch="////",
            label="follow-up breached",
        ),
        Line2D(
            [],
            [],
            linestyle="none",
            marker=FLAG,
            markersize=11,
            markerfacecolor=SEVERITY["high"],
            markeredgecolor=INK,
            label="warning (high)",
        ),
        Line2D(
            [],
            [],
            linestyle="none",
            marker=NOTE,
            markerfacecolor="#fff3b0",
            markeredgecolor="#6b5a00",
            label="coaching note",
        ),
    ]
    return handles

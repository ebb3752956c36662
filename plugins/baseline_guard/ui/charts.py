"""Inline SVG charts, generated on the server (nothing is downloaded by the browser)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from baseline_guard.health.report import WindowAvailability

GREEN, RED, GREY, INK = "#2e7d32", "#c62828", "#9e9e9e", "#263238"
AXIS_FROM = 0.90  # bars start at 90%: the interesting range around the 99% target stays readable


def percent(value: float | None) -> str:
    return "no data" if value is None else f"{value * 100:.2f}%"


def _x(value: float, width: float) -> float:
    return max(0.0, min(1.0, (value - AXIS_FROM) / (1 - AXIS_FROM))) * width


def availability_bars(windows: dict[str, WindowAvailability], target: float, *, width: int = 320) -> str:
    """One horizontal bar per window (90%..100%), green at or above the target, red below, the target
    drawn as a dashed line."""
    row, label_w, value_w = 26, 40, 78
    height = row * len(windows) + 18
    parts = [
        f'<svg class="bars" role="img" width="{label_w + width + value_w}" height="{height}" '
        f'aria-label="availability against the {target:.0%} target">'
    ]
    for n, (name, w) in enumerate(windows.items()):
        y = n * row + 4
        colour = GREY if w.availability is None else (GREEN if w.meets_target else RED)
        bar = 0.0 if w.availability is None else _x(w.availability, width)
        parts += [
            f'<text x="0" y="{y + 14}" class="lbl">{escape(name)}</text>',
            f'<rect x="{label_w}" y="{y}" width="{width}" height="18" fill="#eceff1"/>',
            f'<rect class="bar" data-window="{escape(name)}" x="{label_w}" y="{y}" width="{bar:.1f}" height="18" '
            f'fill="{colour}"><title>{escape(name)}: {percent(w.availability)}</title></rect>',
            f'<text x="{label_w + width + 6}" y="{y + 14}" class="val" fill="{colour}">{percent(w.availability)}</text>',
        ]
    tx = label_w + _x(target, width)
    parts += [
        f'<line class="target" x1="{tx:.1f}" x2="{tx:.1f}" y1="0" y2="{height - 14}" stroke="{INK}" '
        f'stroke-dasharray="4 3" stroke-width="1.5"/>',
        f'<text x="{tx - 34:.1f}" y="{height - 2}" class="lbl">target {target:.0%}</text>',
        f'<text x="{label_w}" y="{height - 2}" class="lbl">{AXIS_FROM:.0%}</text>',
        "</svg>",
    ]
    return "".join(parts)


def day_strip(down: Sequence[tuple[datetime, datetime]], now: datetime, *, width: int = 438) -> str:
    """The last 24 hours left to right: green when up, red while down."""
    start = now - timedelta(hours=24)
    span = (now - start).total_seconds()
    parts = [
        f'<svg class="strip" role="img" width="{width}" height="30" aria-label="last 24 hours">',
        f'<rect x="0" y="0" width="{width}" height="16" fill="{GREEN}" opacity="0.8"/>',
    ]
    for lo, hi in down:
        x = (lo - start).total_seconds() / span * width
        w = max((hi - lo).total_seconds() / span * width, 2.0)
        parts.append(
            f'<rect class="down" x="{x:.1f}" y="0" width="{w:.1f}" height="16" fill="{RED}">'
            f"<title>down {lo:%H:%M} to {hi:%H:%M} UTC</title></rect>"
        )
    parts += [
        f'<text x="0" y="28" class="lbl">{start:%H:%M}</text>',
        f'<text x="{width - 60}" y="28" class="lbl">now {now:%H:%M} UTC</text>',
        "</svg>",
    ]
    return "".join(parts)

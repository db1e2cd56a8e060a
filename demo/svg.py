"""Plots as inline SVG: a line chart and a bar chart, drawn from numbers alone.

The demo's report must open from a file on a machine without a network, so it carries
its plots itself: no script, no font or stylesheet fetched. Each plot has its axes, a
few round ticks, a legend, and a ``<title>`` on every series for a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 1100, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 20, 30, 40
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


@dataclass(frozen=True)
class Series:
    name: str
    color: str  # #rrggbb: the report's tests find each series by its exact color
    points: Sequence[tuple[float, float]]  # (x, y), x ascending


def si(value: float, unit: str = "") -> str:
    """1530000 -> '1.53 M' (+ unit): the axis labels of counts and hashrates."""
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}".rstrip()
    return f"{value:.3g} {unit}".rstrip()


def ticks(top: float, count: int = 5) -> list[float]:
    """Round values from 0 to at least ``top`` (1, 2 or 5 times a power of ten apart)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


class _Frame:
    """The plot area of one chart: data coordinates to pixels, and its axes."""

    def __init__(self, x_max: float, y_ticks: list[float]) -> None:
        self.x_max = x_max or 1.0
        self.y_ticks = y_ticks
        self.y_max = y_ticks[-1] or 1.0
        self.width = WIDTH - _LEFT - _RIGHT
        self.height = HEIGHT - _TOP - _BOTTOM

    def x(self, value: float) -> float:
        return _LEFT + value / self.x_max * self.width

    def y(self, value: float) -> float:
        return _TOP + self.height - value / self.y_max * self.height

    def axes(
        self, y_label: Callable[[float], str], x_label: str, x_ticks: Sequence[float] = ()
    ) -> list[str]:
        out = []
        bottom = _TOP + self.height
        for tick in (t for t in x_ticks if t <= self.x_max):
            x = self.x(tick)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}" '
                       'stroke="#444"/>')  # fmt: skip
            out.append(f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle">'
                       f"{tick:g}</text>")  # fmt: skip
        for tick in self.y_ticks:
            y = self.y(tick)
            out.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                       'stroke="#e0e0e0"/>')  # fmt: skip
            out.append(f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
                       f"{escape(y_label(tick))}</text>")  # fmt: skip
        out.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{bottom}" y2="{bottom}" '
                   'stroke="#444"/>')  # fmt: skip
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{bottom}" stroke="#444"/>')
        out.append(f'<text x="{_LEFT + self.width / 2}" y="{HEIGHT - 4}" '
                   f'text-anchor="middle">{escape(x_label)}</text>')  # fmt: skip
        return out


def _svg(body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(label)}" '
            'font-family="sans-serif" font-size="12" fill="#222">'
            + "".join(body) + "</svg>")  # fmt: skip


def _legend(series: Sequence[Series]) -> list[str]:
    out, x = [], _LEFT
    for s in series:
        out.append(f'<rect x="{x}" y="8" width="14" height="14" fill="{s.color}"/>')
        out.append(f'<text x="{x + 20}" y="20">{escape(s.name)}</text>')
        x += 30 + 8 * len(s.name)
    return out


def line_chart(series: Sequence[Series], *, x_label: str, unit: str = "") -> str:
    """Lines over a shared x axis starting at 0; an empty chart says so."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return _svg([f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
                     "no data</text>"], "no data")  # fmt: skip
    x_max = max(x for s in drawn for x, _ in s.points)
    frame = _Frame(x_max, ticks(max(y for s in drawn for _, y in s.points)))
    body = frame.axes(lambda v: si(v, unit), x_label, ticks(x_max, 10)) + _legend(drawn)
    for s in drawn:
        points = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in s.points)
        body.append(f'<polyline points="{points}" fill="none" stroke="{s.color}" '
                    f'stroke-width="3" stroke-linejoin="round"><title>{escape(s.name)}</title>'
                    "</polyline>")  # fmt: skip
    return _svg(body, ", ".join(s.name for s in drawn))


def bar_chart(bars: Sequence[tuple[str, float]], *, color: str, x_label: str,
              unit: str = "") -> str:  # fmt: skip
    """One bar per (name, value), in the order given; hover shows name and value."""
    if not bars:
        return _svg([f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
                     "no data</text>"], "no data")  # fmt: skip
    frame = _Frame(len(bars), ticks(max(v for _, v in bars)))
    body = frame.axes(lambda v: si(v, unit), x_label)
    width = frame.width / len(bars)
    for i, (name, value) in enumerate(bars):
        top = frame.y(value)
        body.append(f'<rect x="{frame.x(i):.2f}" y="{top:.1f}" width="{max(width * 0.8, 1):.2f}" '
                    f'height="{frame.y(0) - top:.1f}" fill="{color}"><title>{escape(name)}: '
                    f"{escape(si(value, unit))}</title></rect>")  # fmt: skip
    return _svg(body, x_label)

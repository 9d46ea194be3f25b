"""Charts drawn on the server as inline SVG: nothing to download, no script, so the admin's strict
Content-Security-Policy holds. Colours are presentation attributes, not style, for the same reason.
Every chart has a title for screen readers, and each page shows the same numbers in a table too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

BAR = "#9ec5fe"
SAVED = "#1f6feb"
AXIS = "#57606a"


def _ticks(maximum: float) -> float:
    """A round step giving about four gridlines up to the maximum."""
    if maximum <= 0:
        return 1
    rough = maximum / 4
    magnitude = 10 ** (len(str(int(rough))) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= rough:
            return step * magnitude
    return 10 * magnitude


def legend(items: Sequence[tuple[str, str]]) -> SafeString:
    """What each colour means, under a chart (HTML: it reflows on a phone where SVG text would not)."""
    return format_html('<ul class="bb-legend">{}</ul>', format_html_join(
        "", '<li><svg width="12" height="12" aria-hidden="true" focusable="false"><rect width="12" height="12" '
            'fill="{}"/></svg> {}</li>', ((colour, label) for colour, label in items)))


def daily_chart(days: Sequence[dict], *, title: str, width: int = 760, height: int = 200,
                labels: tuple[str, str] = ("Sessions opened", "Deflected")) -> SafeString:
    """Sessions per day as bars, the day's deflected accounts drawn over them, with a legend."""
    left, bottom, top = 48, 24, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((day["sessions"] for day in days), default=0)
    step = _ticks(peak)
    ceiling = max(step * (int(peak / step) + (1 if peak % step else 0)), step)
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.8, 1)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / ceiling

    grid = format_html_join("", '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#d0d7de" stroke-width="1"/>'
                            '<text x="{}" y="{}" font-size="11" text-anchor="end" fill="{}">{}</text>',
                            ((left, width - 8, _n(y(v)), _n(y(v)), left - 6, _n(y(v) + 4), AXIS, f"{v:,.0f}")
                             for v in _range(0, ceiling, step)))
    bars = format_html_join("", '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                            "<title>{}: {} sessions, {} deflected</title></rect>"
                            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                            ((_n(left + i * slot), _n(y(d["sessions"])), _n(bar_w),
                              _n(plot_h + top - y(d["sessions"])), BAR, _day(d["day"]), d["sessions"], d["deflected"],
                              _n(left + i * slot), _n(y(d["deflected"])), _n(bar_w),
                              _n(plot_h + top - y(d["deflected"])),
                              SAVED)
                             for i, d in enumerate(days)))
    every = max(len(days) // 6, 1)
    # Labels centred under their bar, the last ones kept inside the drawing.
    ticks = format_html_join("", '<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="{}">{}</text>',
                             ((_n(min(left + i * slot + bar_w / 2, width - 24)), height - 6, AXIS, _day(d["day"]))
                              for i, d in enumerate(days) if i % every == 0))
    return format_html('<figure class="bb-figure"><svg class="bb-chart" viewBox="0 0 {} {}" width="100%" role="img" '
                       'aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}{}{}</svg>{}</figure>',
                       width, height, title, title, grid, bars, ticks, legend([(BAR, labels[0]), (SAVED, labels[1])]))


def bar_list(rows: Sequence[tuple[str, float, str]], *, title: str, width: int = 760,
             meaning: str = "") -> SafeString:
    """Horizontal bars, one per (label, share 0..1, text shown at the bar's end), with a legend saying
    what a bar's length is (`meaning`, default the title)."""
    label_w, row_h = 330, 26
    height = row_h * max(len(rows), 1) + 4
    plot_w = width - label_w - 90
    items = format_html_join(
        "", '<text x="{}" y="{}" font-size="12" text-anchor="end" fill="#24292f">{}</text>'
            '<rect x="{}" y="{}" width="{}" height="16" fill="{}"/>'
            '<text x="{}" y="{}" font-size="12" fill="{}">{}</text>',
        ((label_w - 8, i * row_h + 17, _clip(label), label_w, i * row_h + 4, _n(max(plot_w * (share or 0), 1)), SAVED,
          _n(label_w + max(plot_w * (share or 0), 1) + 6), i * row_h + 17, AXIS, text)
         for i, (label, share, text) in enumerate(rows)))
    return format_html('<figure class="bb-figure"><svg class="bb-chart" viewBox="0 0 {} {}" width="100%" role="img" '
                       'aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>{}</figure>',
                       width, height, title, title, items, legend([(SAVED, meaning or title)]))


def _n(value: float) -> str:
    return f"{value:.1f}"


def _range(start: float, stop: float, step: float) -> list[float]:
    values, current = [], start
    while current <= stop + 1e-9:
        values.append(current)
        current += step
    return values


def _day(day: date) -> str:
    return day.strftime("%b %d")


def _clip(text: str, limit: int = 46) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

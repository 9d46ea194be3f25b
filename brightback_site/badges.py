"""Coloured status badges for the admin's lists, the same colours for every channel's rows."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

GREEN, YELLOW, BLUE, ORANGE, RED, GREY = (
    ("#dafbe1", "#116329"), ("#fff8c5", "#7d4e00"), ("#ddf4ff", "#0550ae"), ("#fff1e5", "#bc4c00"),
    ("#ffebe9", "#cf222e"), ("#eaeef2", "#57606a"))
COLOURS = {
    "active": GREEN, "succeeded": GREEN,
    "pending": YELLOW,
    "sending": BLUE, "running": BLUE, "in_progress": BLUE,
    "failing": ORANGE, "retrying": ORANGE,
    "failed": RED, "disabled": RED,
    "paused": GREY, "interrupted": GREY, "skipped": GREY,
}


def badge(value: str, label: str | None = None) -> SafeString:
    background, colour = COLOURS.get(value, ("#eaeef2", "#24292f"))
    return format_html('<span style="background:{};color:{};padding:1px 8px;border-radius:10px;'
                       'font-weight:600;white-space:nowrap">{}</span>', background, colour, label or value)

"""Docker's tables and human units: columns three spaces apart, sizes 1000-based with three
significant digits, "N minutes ago".  Pure; every command that prints a table uses it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime


def render(table: Sequence[Sequence[str]]) -> str:
    """Rows as docker prints tables: columns left-aligned, three spaces apart, no trailing space."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines)


def human_size(n: int) -> str:
    """Docker's size format: 1000-based, 3 significant digits (``8.39MB``, ``0B``)."""
    units = ["B", "kB", "MB", "GB", "TB"]
    size = float(n)
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    if i == 0:
        return f"{n}B"
    return f"{size:.3g}{units[i]}"


def since(created: str, now: datetime) -> str:
    """Docker's CREATED column (go-units HumanDuration + " ago")."""
    if not created:
        return "N/A"
    try:
        head, _, frac = created.rstrip("Z").partition(".")
        t = datetime.fromisoformat(head).replace(tzinfo=UTC)
    except ValueError:
        return created
    return human_duration((now - t).total_seconds()) + " ago"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    minutes, hours = s // 60, s // 3600
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // (24 * 7)} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // (24 * 30)} months"
    return f"{hours // (24 * 365)} years"




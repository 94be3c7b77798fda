"""Server-side SVG charts (no JavaScript, no CDN). Pure."""

from __future__ import annotations

import calendar
from decimal import Decimal
from html import escape

COLOURS = {"actual": "#2b6cb0", "estimated": "#d69e2e", "provisional": "#a0aec0", None: "#cbd5e0"}


def monthly_bars(series: list[dict], *, width: int = 640, height: int = 220, title: str = "kWh per month") -> str:
    """Bar chart of [{"year", "month", "kwh", "status"}]; estimated months drawn in amber."""
    pad_l, pad_b, pad_t = 48, 28, 24
    values = [Decimal(str(r["kwh"])) for r in series if r.get("kwh") is not None]
    top = max([v for v in values if v > 0], default=Decimal(1))
    inner_w, inner_h = width - pad_l - 8, height - pad_b - pad_t
    slot = inner_w / max(len(series), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" class="chart">',
        f'<text x="{pad_l}" y="16" font-size="12" fill="#2d3748">{escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - 8}" y2="{pad_t + inner_h}" stroke="#a0aec0"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 4}" font-size="10" text-anchor="end" fill="#4a5568">{top:.0f}</text>',
    ]
    for i, row in enumerate(series):
        x = pad_l + i * slot + slot * 0.15
        label = f"{calendar.month_abbr[row['month']]} {str(row['year'])[2:]}"
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{height - 10}" font-size="10" text-anchor="middle" '
            f'fill="#4a5568">{label}</text>'
        )
        kwh = row.get("kwh")
        if kwh is None:
            continue
        value = max(Decimal(str(kwh)), Decimal(0))
        h = float(value / top) * inner_h
        colour = COLOURS.get(row.get("status"), COLOURS["actual"])
        parts.append(
            f'<rect x="{x:.1f}" y="{pad_t + inner_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{colour}"><title>{label}: {kwh} kWh ({escape(str(row.get("status")))})</title></rect>'
        )
    parts.append("</svg>")
    return "".join(parts)

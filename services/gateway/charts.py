"""Server-made SVG bar charts for the console (统计图): markup only, no script,
no style element or attribute — presentation attributes (``fill``), which the
Content-Security-Policy (``style-src 'self'``) does not govern. Every text is
escaped; the result is inlined into a page as markup.
"""
from __future__ import annotations

from decimal import Decimal

from markupsafe import Markup, escape

WIDTH, BAR_AREA, LABEL_W, ROW_H = 360, 200, 96, 22
COLOURS = ("#2f5fb3", "#c46a1a")


def bar_chart(title: str, labels: list[str], values: list, unit: str = "", colour: int = 0) -> Markup:
    """Horizontal bars, one row per label (readable at 375 px); ``values`` are numbers or Decimal strings."""
    numbers = [Decimal(str(v or 0)) for v in values]
    top = max(numbers, default=Decimal(0)) or Decimal(1)
    height = ROW_H * max(len(labels), 1) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
             f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="0" y="14" font-size="13" font-weight="600" fill="#222">{escape(title)}</text>']
    for n, (label, value) in enumerate(zip(labels, numbers)):
        y = 26 + n * ROW_H
        width = int(BAR_AREA * value / top) if value > 0 else 0
        shown = f"{value:,.2f}" if value != value.to_integral_value() else f"{int(value):,}"
        parts.append(f'<text x="0" y="{y + 14}" font-size="12" fill="#444">{escape(label)}</text>'
                     f'<rect x="{LABEL_W}" y="{y + 3}" width="{width}" height="{ROW_H - 8}" '
                     f'fill="{COLOURS[colour % len(COLOURS)]}"/>'
                     f'<text x="{LABEL_W + width + 4}" y="{y + 14}" font-size="11" fill="#222">'
                     f'{escape(shown)}{escape(unit)}</text>')
    if not labels:
        parts.append('<text x="0" y="40" font-size="12" fill="#777">暂无数据</text>')
    parts.append("</svg>")
    return Markup("".join(parts))

"""Bar charts as inline SVG, drawn on the server: no script, no asset fetched by the browser.

Every text that reaches the SVG is escaped here; the page includes the result as it is.
"""
from __future__ import annotations

from html import escape

WIDTH, HEIGHT = 760, 200
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 14, 34


def _nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^n at or above value (at least 1): the axis' top."""
    if value <= 1:
        return 1.0
    scale = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * scale:
            return float(step * scale)
    return float(10 * scale)


def human(value: float) -> str:
    """12,345 -> 12.3k; 1,234,567 -> 1.2M (axis labels)."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def bar_chart(labels: list[str], values: list[float], title: str, unit: str, every: int = 1,
              width: int = WIDTH, height: int = HEIGHT) -> str:
    """One bar per label; every ``every``-th label written under the axis; each bar's value in its tooltip."""
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    top = _nice_max(max(values, default=0))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / max(1, len(values))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(human(top * fraction))}</text>')
    for i, (label, value) in enumerate(zip(labels, values)):
        bar_h = plot_h * value / top
        x = LEFT + i * slot
        parts.append(f'<rect x="{x + slot * 0.12:.1f}" y="{TOP + plot_h - bar_h:.1f}" width="{slot * 0.76:.1f}" '
                     f'height="{bar_h:.1f}"><title>{escape(label)}: {value:,.0f} {escape(unit)}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - BOTTOM + 16}" text-anchor="middle">'
                         f"{escape(label)}</text>")
    parts.append(f'<text x="{LEFT}" y="{height - 4}" class="unit">{escape(unit)}</text></svg>')
    return "".join(parts)

"""A line chart as inline SVG, drawn on the server: the page needs no script and no library.

Each point carries its values as `data-*` attributes, so a test (or a curious reader of the
DOM) gets the exact numbers the chart was drawn from.
"""

from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 130, 16, 40
NUM_Y_TICKS = 5
MAX_X_TICKS = 12

Series = dict[str, list[tuple[int, float]]]
"""Name -> (x, y) points, x ascending (here: cycle -> held-out loss)."""


def line_chart(series: Series, *, x_label: str, y_label: str) -> str:
    """An `<svg>` with one polyline and one circle per point for every series."""
    points = [p for pts in series.values() for p in pts]
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x_lo, x_hi = min(xs), max(xs)
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (max(ys) - min(ys)) * 0.08 or abs(max(ys)) * 0.05 or 1.0
    y_lo, y_hi = min(ys) - pad, max(ys) + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return TOP + (y_hi - y) / (y_hi - y_lo) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(y_label)} by {escape(x_label)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for i in range(NUM_Y_TICKS):
        y = y_lo + (y_hi - y_lo) * i / (NUM_Y_TICKS - 1)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3f}</text>'
        )
    for x in _x_ticks(min(xs), max(xs)):
        parts.append(
            f'<text x="{px(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{x}</text>'
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    for i, (name, pts) in enumerate(sorted(series.items())):
        color = PALETTE[i % len(PALETTE)]
        label = escape(name)
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline class="series" data-series="{label}" points="{coords}" '
            f'fill="none" stroke="{color}" stroke-width="2"/>'
        )
        parts.extend(
            f'<circle class="point" data-series="{label}" data-x="{x}" data-y="{y!r}" '
            f'cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}">'
            f"<title>{label}, {escape(x_label)} {x}: {y:.4f}</title></circle>"
            for x, y in pts
        )
        legend_y = TOP + 12 + 18 * i
        parts.append(
            f'<rect x="{LEFT + plot_w + 14}" y="{legend_y - 9}" width="12" height="12" '
            f'fill="{color}"/><text x="{LEFT + plot_w + 32}" y="{legend_y + 1}">{label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _x_ticks(lo: int, hi: int) -> range:
    step = max(1, -(-(hi - lo) // MAX_X_TICKS))
    return range(lo, hi + 1, step)

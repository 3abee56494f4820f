#!/usr/bin/env python3
"""Draws the benchmark's results as an SVG bar chart.

    chart.py RESULTS_JSON OUTPUT_SVG

One horizontal bar per scenario, requests/s on a linear scale, beside the
floor (the best of its runs) drawn across the whole chart as a dashed line;
each bar is labelled with its requests/s and its fraction of the floor, and a
scenario with a target has a tick where the target lies. Python 3 standard
library only; the SVG is self-contained (no scripts, no web fonts).
"""

import json
import sys
from xml.sax.saxutils import escape

WIDTH = 900
LEFT = 270  # room for the scenario labels
RIGHT = 190  # room for the value labels past the longest bar
TOP = 78
ROW = 30
BAR = 18
BOTTOM = 58

FLOOR_COLOUR = "#7f7f7f"
BAR_COLOUR = "#4c78a8"
MISS_COLOUR = "#e45756"
TARGET_COLOUR = "#222222"


def text(x, y, content, size=12, anchor="start", weight="normal", colour="#222"):
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="{colour}">{escape(content)}</text>'
    )


def busy_note(meta):
    """How much other work shared the two cores, when the run recorded it."""
    busy = meta.get("cpu_during_run")
    if not busy:
        return ""
    server, client = busy.get("server_core", {}), busy.get("client_core", {})
    return (f" · other work during the run: {server.get('other_pct', 0):.0f}% of the server core, "
            f"{client.get('other_pct', 0):.0f}% of the client core")


def main():
    results_path, svg_path = sys.argv[1:3]
    results = json.load(open(results_path))
    meta = results["meta"]
    floor = results["floor"]["best_rps"]
    rows = [("floor (best of %d)" % len(results["floor"]["runs"]), floor, None, None, True)]
    for s in results["scenarios"]:
        rows.append((s["label"], s["rps"], s["floor_fraction"], s, False))

    scale_max = max(r[1] for r in rows) or 1.0
    plot = WIDTH - LEFT - RIGHT
    height = TOP + ROW * len(rows) + BOTTOM

    def x_of(rps):
        return LEFT + plot * rps / scale_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
        text(16, 26, "todo-api: requests/s per scenario, beside the floor", 16, weight="bold"),
        text(16, 46, f"{meta['started_at']} · commit {meta['git_commit']} · server pinned to one core, "
             f"wrk on the other · {meta['connections']} keep-alive connections · "
             f"{meta['duration_s']} s per scenario", 11, colour="#555"),
        text(16, 62, f"load average before: {meta['loadavg_before']}{busy_note(meta)}", 11,
             colour="#555"),
    ]

    # Gridlines at fractions of the floor.
    for fraction in (0.25, 0.5, 0.75, 1.0):
        x = x_of(floor * fraction)
        out.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" '
                   f'y2="{TOP + ROW * len(rows)}" stroke="#ddd"/>')
        out.append(text(x, TOP + ROW * len(rows) + 16, f"{fraction:g}× floor", 10,
                        anchor="middle", colour="#777"))

    for i, (label, rps, fraction, scenario, is_floor) in enumerate(rows):
        y = TOP + i * ROW
        colour = FLOOR_COLOUR if is_floor else BAR_COLOUR
        if scenario and scenario.get("target_met") is False:
            colour = MISS_COLOUR
        width = max(x_of(rps) - LEFT, 1.0)
        out.append(text(LEFT - 10, y + BAR - 4, label, 12, anchor="end"))
        out.append(f'<rect x="{LEFT}" y="{y}" width="{width:.1f}" height="{BAR}" fill="{colour}"/>')
        value = f"{rps:,.0f} req/s"
        if fraction is not None:
            value += f" · {fraction:.3f}× floor" if fraction < 0.01 else f" · {fraction:.2f}× floor"
        label_x = LEFT + width + 6
        target = scenario.get("target_floor_fraction") if scenario else None
        if target:
            x = x_of(floor * target)
            out.append(f'<line x1="{x:.1f}" y1="{y - 3}" x2="{x:.1f}" y2="{y + BAR + 3}" '
                       f'stroke="{TARGET_COLOUR}" stroke-width="2"/>')
            # Past the target's tick when the bar stops short of it.
            label_x = max(label_x, x + 6)
        out.append(text(label_x, y + BAR - 4, value, 11))

    fx = x_of(floor)
    out.append(f'<line x1="{fx:.1f}" y1="{TOP - 6}" x2="{fx:.1f}" y2="{TOP + ROW * len(rows)}" '
               f'stroke="{FLOOR_COLOUR}" stroke-dasharray="4 3"/>')

    legend_y = height - 18
    out.append(f'<rect x="16" y="{legend_y - 10}" width="12" height="12" fill="{FLOOR_COLOUR}"/>')
    out.append(text(34, legend_y, "floor: a bare axum handler with a fixed 20-todo body", 11))
    out.append(f'<rect x="330" y="{legend_y - 10}" width="12" height="12" fill="{BAR_COLOUR}"/>')
    out.append(text(348, legend_y, "scenario", 11))
    out.append(f'<rect x="410" y="{legend_y - 10}" width="12" height="12" fill="{MISS_COLOUR}"/>')
    out.append(text(428, legend_y, "below its target", 11))
    out.append(f'<line x1="540" y1="{legend_y - 11}" x2="540" y2="{legend_y + 3}" '
               f'stroke="{TARGET_COLOUR}" stroke-width="2"/>')
    out.append(text(548, legend_y, "target (× floor; 7 and 8 have theirs in the table)", 11))
    out.append("</svg>")

    with open(svg_path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Draws a window of a Chrome trace-event file (what `rspvscsi-sim trace-export --chrome` writes)
as a timeline PNG, the way Perfetto or chrome://tracing lay it out: one lane per track of one
process (adapter), complete slices ("X") as boxes, instants ("i") as ticks, and request flows
("s" ... "f") as arrows from StartIo to the completion. Only what is in the file is drawn.

    python3 timeline.py TRACE.json OUT.png [--pid 1] [--from-us T] [--width-us W] [--title TEXT]

Without --from-us the window ends a little after the enable callback (Storport: the DPC) that
completed the most requests, so a busy stretch of the deferred interrupt path is in view; only
the tracks with events in the window are drawn.
Needs matplotlib.
"""

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

LANES = ["Upper edge", "StartIo", "ISR", "DPC", "Reset and control", "Port", "Interrupt line", "Device DMA"]
COLOURS = {
    "HwScsiStartIo": "#4e79a7",
    "HwStorStartIo": "#4e79a7",
    "HwStorBuildIo": "#76b7b2",
    "HwScsiInterrupt": "#e15759",
    "HwStorInterrupt": "#e15759",
    "HwScsiEnableInterruptsCallback": "#f28e2b",
    "HwScsiDisableInterruptsCallback": "#edc948",
    "HwStorDpcRoutine": "#f28e2b",
    "line asserted": "#bab0ac",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("out")
    ap.add_argument("--pid", type=int, default=1)
    ap.add_argument("--from-us", type=float)
    ap.add_argument("--width-us", type=float, default=120.0)
    ap.add_argument("--title", default="")
    a = ap.parse_args()

    with open(a.trace) as f:
        events = json.load(f)["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == a.pid}
    mine = [e for e in events if e.get("pid") == a.pid and e["ph"] != "M"]
    slices = [e for e in mine if e["ph"] == "X"]

    start = a.from_us
    if start is None:
        # The deferred callback that completed the most requests, with room before it for the
        # StartIo calls and the ISR that led to it.
        callbacks = [e for e in slices if e["name"] in ("HwScsiEnableInterruptsCallback", "HwStorDpcRoutine")]
        done = [e["ts"] for e in slices if e.get("cat") == "completion"]
        best = max(callbacks, key=lambda c: sum(1 for t in done if c["ts"] <= t <= c["ts"] + c["dur"]), default=None)
        start = best["ts"] - 0.6 * a.width_us if best else 0.0
    end = start + a.width_us

    in_window = {e["tid"] for e in mine if e["ts"] <= end and e["ts"] + e.get("dur", 0) >= start}
    lanes = [n for n in LANES if any(names.get(t) == n for t in in_window)]
    row = {n: len(lanes) - 1 - i for i, n in enumerate(lanes)}
    tid_row = {tid: row[n] for tid, n in names.items() if n in row}

    fig, ax = plt.subplots(figsize=(13, 0.62 * len(lanes) + 1.4), dpi=100)
    for e in slices:
        if e["tid"] not in tid_row:
            continue
        ts, dur = e["ts"], e.get("dur", 0)
        if ts > end or ts + dur < start:
            continue
        y = tid_row[e["tid"]]
        if e.get("cat") == "completion":
            ax.plot([ts, ts], [y - 0.38, y + 0.38], color="#59a14f", lw=1.6, zorder=4)
            continue
        colour = COLOURS.get(e["name"], "#9c755f")
        ax.add_patch(Rectangle((ts, y - 0.3), max(dur, 0.15), 0.6, facecolor=colour, edgecolor="black", lw=0.4, zorder=2))
        label = e["name"].replace("HwScsi", "").replace("InterruptsCallback", "Int.Cb")
        if dur >= 0.09 * a.width_us:
            ax.text(ts + dur / 2, y, label, ha="center", va="center", fontsize=7, zorder=5, clip_on=True)
    for e in mine:
        if e["ph"] != "i" or e["tid"] not in tid_row or not start <= e["ts"] <= end:
            continue
        y = tid_row[e["tid"]]
        ax.plot([e["ts"]], [y], marker="|", color="#555555", ms=7, zorder=3)
    flows = {}
    for e in mine:
        if e["ph"] in ("s", "t", "f") and e.get("cat") == "request":
            flows.setdefault(e["id"], []).append(e)
    for points in flows.values():
        for p, q in zip(points, points[1:]):
            if p["tid"] not in tid_row or q["tid"] not in tid_row:
                continue
            if q["ts"] < start or p["ts"] > end:
                continue
            arrow = FancyArrowPatch(
                (p["ts"], tid_row[p["tid"]] - 0.3),
                (q["ts"], tid_row[q["tid"]] + 0.3),
                arrowstyle="-|>",
                mutation_scale=7,
                color="#59a14f",
                lw=0.6,
                alpha=0.8,
                zorder=3,
                connectionstyle="arc3,rad=-0.12",
            )
            ax.add_patch(arrow)

    ax.set_xlim(start, end)
    ax.set_ylim(-0.7, len(lanes) - 0.3)
    ax.set_yticks(range(len(lanes)))
    ax.set_yticklabels(list(reversed(lanes)), fontsize=9)
    ax.set_xlabel("machine time (µs)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#dddddd", lw=0.5)
    ax.set_axisbelow(True)
    legend = [
        Rectangle((0, 0), 1, 1, facecolor=COLOURS["HwScsiStartIo"], edgecolor="black", lw=0.4, label="HwScsiStartIo"),
        Rectangle((0, 0), 1, 1, facecolor=COLOURS["HwScsiInterrupt"], edgecolor="black", lw=0.4, label="HwScsiInterrupt"),
        Rectangle((0, 0), 1, 1, facecolor=COLOURS["HwScsiEnableInterruptsCallback"], edgecolor="black", lw=0.4, label="EnableInterruptsCallback"),
        Rectangle((0, 0), 1, 1, facecolor=COLOURS["HwScsiDisableInterruptsCallback"], edgecolor="black", lw=0.4, label="DisableInterruptsCallback"),
        plt.Line2D([0], [0], color="#59a14f", lw=1.6, label="completion / request flow"),
        plt.Line2D([0], [0], color="#555555", marker="|", lw=0, ms=7, label="instant (submit, DMA, notification)"),
    ]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=6, fontsize=7, frameon=False)
    if a.title:
        ax.set_title(a.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=100)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Turns one run of `benches/compare.rs`, `benches/memory.rs` and `benches/curves.rs` into the
markdown table of docs/PERFORMANCE.md (medians and ratios against the targets of issue 10), a
bar chart of the ratios and one line chart per cost curve.

Usage: python3 benches/report.py [--target-dir target/bench] [--svg docs/bench.svg]
                                 [--curves-dir docs] [--markdown FILE] [--note TEXT]

Reads <target-dir>/criterion/**/new/estimates.json (criterion medians),
<target-dir>/criterion/memory/estimates.json and <target-dir>/criterion/curves/*.json
(stdlib only). Prints the table with the machine, the load and the commit, then each curve as a
table with its growth exponent (y ~ x^k fitted over the large loads: k near 0 is O(1), near 1
is O(n)); writes the SVG charts: the ratios (horizontal bars, ratio = keepwatch / peer, each
row's target marked) and docs/curve-<id>.svg.
"""

import argparse
import datetime
import json
import math
import os
import subprocess
import sys

# (row, keepwatch bench, peers in the group, named peer, target ratio, note)
# A bench id is criterion's directory path under criterion/: group/function[/parameter].
ROWS = [
    ("set, nobody watching", "set/keepwatch",
     ["set/tokio-watch", "set/watchable", "set/parking_lot-mutex"],
     "set/tokio-watch", 0.10, None, ""),
    ("get", "get/keepwatch",
     ["get/tokio-watch", "get/parking_lot-mutex", "get/std-rwlock"],
     "get/tokio-watch", 1.10, None, ""),
    ("fanout, 1 idle subscription", "fanout/keepwatch/1",
     ["fanout/tokio-broadcast/1", "fanout/tokio-watch/1"],
     "fanout/tokio-broadcast/1", 1.0, None, ""),
    ("fanout, 100 idle subscriptions", "fanout/keepwatch/100",
     ["fanout/tokio-broadcast/100", "fanout/tokio-watch/100"],
     "fanout/tokio-broadcast/100", 1.0, None, ""),
    ("fanout, 1,000 idle subscriptions", "fanout/keepwatch/1000",
     ["fanout/tokio-broadcast/1000", "fanout/tokio-watch/1000"],
     "fanout/tokio-broadcast/1000", 1.0, None, ""),
    ("fanout flat in N: 1,000 vs 1", "fanout/keepwatch/1000", ["fanout/keepwatch/1"],
     "fanout/keepwatch/1", 1.10, None, "keepwatch against itself"),
    ("ping-pong, two OS threads", "pingpong-thread/keepwatch",
     ["pingpong-thread/crossbeam-channel", "pingpong-thread/std-mpsc",
      "pingpong-thread/flume", "pingpong-thread/mutex-condvar"],
     "pingpong-thread/crossbeam-channel", 1.0, None, ""),
    ("ping-pong, two tokio tasks", "pingpong-async/keepwatch",
     ["pingpong-async/tokio-watch", "pingpong-async/tokio-notify",
      "pingpong-async/tokio-mpsc", "pingpong-async/flume"],
     "pingpong-async/tokio-watch", 0.75, 0.60, ""),
    ("bridge, blocking → async, 1M", "bridge/keepwatch",
     ["bridge/flume", "bridge/tokio-mpsc", "bridge/crossbeam-channel"],
     "bridge/flume", 1.0, None, ""),
    ("herd burst, 1,000 waiters", "herd/keepwatch/burst",
     ["herd/tokio-watch/burst", "herd/mutex-condvar/burst"],
     "herd/tokio-watch/burst", 1.0, None, ""),
    ("herd lockstep, 1,000 waiters", "herd/keepwatch/lockstep",
     ["herd/tokio-watch/lockstep", "herd/mutex-condvar/lockstep"],
     "herd/tokio-watch/lockstep", 0.10, None, ""),
]

# Memory row: keepwatch total / tokio broadcast total; async-broadcast is a reference peer.
MEMORY_TARGET, MEMORY_STRETCH = 1.0, 0.30

# Curves whose x is a load: the growth exponent is fitted over x >= this (the large loads).
FIT_FROM = 1000


def fmt_time(ns):
    if ns is None:
        return "—"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def medians(root):
    """criterion bench id -> median in ns, from <root>/**/new/estimates.json."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        bench = os.path.relpath(os.path.dirname(dirpath), root).replace(os.sep, "/")
        out[bench] = est["median"]["point_estimate"]
    return out


def machine():
    try:
        cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        cpus = str(os.cpu_count())
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpus} CPUs, {model}"


def verdict(ratio, target, stretch):
    if ratio is None:
        return "not run"
    if target is None:
        return "—"
    if ratio > target:
        return "missed"
    if stretch is not None:
        return "met, stretch met" if ratio <= stretch else "met, stretch missed"
    return "met"


def build_rows(m):
    rows = []
    for name, kw, peers, named, target, stretch, note in ROWS:
        k = m.get(kw)
        p = m.get(named)
        ratio = k / p if k is not None and p else None
        rows.append(dict(name=name, kw=fmt_time(k), peers=[(short(x), fmt_time(m.get(x)))
                                                          for x in peers],
                         named=short(named), ratio=ratio, target=target, stretch=stretch,
                         verdict=verdict(ratio, target, stretch), note=note))
    return rows


def memory_row(mem):
    """The memory row, in the shape of `build_rows`' rows, or None."""
    k, b = (mem or {}).get("keepwatch"), (mem or {}).get("tokio-broadcast")
    if not (k and b):
        return None
    desc = lambda d: (f"{d['total']:,} B ({d['per_subscription']:.0f} B/sub, "
                      f"{d['per_transition']:.1f} B/transition)")
    peers = [("tokio-broadcast", desc(b))]
    if mem.get("async-broadcast"):
        peers.append(("async-broadcast", desc(mem["async-broadcast"])))
    ratio = k["total"] / b["total"]
    return dict(name="memory, 1,000 subscriptions + 10,000 queued u64", kw=desc(k), peers=peers,
                named="tokio-broadcast", ratio=ratio, target=MEMORY_TARGET,
                stretch=MEMORY_STRETCH, verdict=verdict(ratio, MEMORY_TARGET, MEMORY_STRETCH),
                note="")


def short(bench):
    parts = bench.split("/")
    return parts[1] if len(parts) > 1 else bench


def table(rows, mem):
    lines = [
        "| workload | keepwatch median | peer medians | ratio vs | ratio | target | verdict |",
        "| --- | ---: | --- | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        peers = "<br>".join(f"{b} {t}" for b, t in r["peers"])
        ratio = f"{r['ratio']:.3g}×" if r["ratio"] is not None else "—"
        target = f"≤ {r['target']:.2f}×" if r["target"] is not None else "—"
        if r["stretch"] is not None:
            target += f" (stretch {r['stretch']:.2f}×)"
        name = r["name"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {name} | {r['kw']} | {peers} | {r['named']} "
                     f"| {ratio} | {target} | {r['verdict']} |")
    if mem and mem.get("keepwatch") and mem.get("tokio-broadcast"):
        k, b = mem["keepwatch"], mem["tokio-broadcast"]
        back = k["after_drain"] <= 16 * 1024
        lines.append(
            f"| memory after drain | {k['after_drain']:+,} B | tokio-broadcast "
            f"{b['after_drain']:+,} B | start level | — | ≤ 16 KiB kept for the next burst | "
            f"{'met' if back else 'missed'} |")
    return "\n".join(lines)


def ratio_svg(rows, path, subtitle):
    bars = [(r["name"], r["ratio"], r["target"]) for r in rows
            if r["ratio"] is not None and r["target"] is not None]
    label_w, bar_w, row_h, top = 300, 460, 26, 56
    width, height = label_w + bar_w + 90, top + row_h * len(bars) + 40
    vmax = max([2.0] + [min(r, 4.0) for _, r, _ in bars] + [t for _, _, t in bars])
    x = lambda v: label_w + bar_w * min(v, vmax) / vmax
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="15" font-weight="bold">keepwatch cost / peer cost '
        f'(lower is better; | = target)</text>',
        f'<text x="10" y="38" fill="#555">{escape(subtitle)}</text>',
    ]
    for i, (name, ratio, target) in enumerate(bars):
        y = top + i * row_h
        color = "#2e7d32" if ratio <= target else "#c62828"
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(name)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{x(ratio) - label_w:.1f}" '
                   f'height="{row_h - 8}" fill="{color}"/>')
        clipped = "+" if ratio > vmax else ""
        out.append(f'<text x="{x(ratio) + 4:.1f}" y="{y + 15}">{ratio:.2f}×{clipped}</text>')
        out.append(f'<line x1="{x(target):.1f}" x2="{x(target):.1f}" y1="{y}" y2="{y + row_h - 2}" '
                   f'stroke="black" stroke-width="2"/>')
    base = top + row_h * len(bars)
    out.append(f'<line x1="{x(1.0):.1f}" x2="{x(1.0):.1f}" y1="{top - 4}" y2="{base}" '
               f'stroke="#888" stroke-dasharray="3,3"/>')
    out.append(f'<text x="{x(1.0):.1f}" y="{base + 16}" text-anchor="middle" fill="#555">1.0×</text>')
    out.append("</svg>")
    write(path, out)


def write(path, lines):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------------------
# Cost curves: <target-dir>/criterion/curves/<id>.json, written by benches/curves.rs and
# benches/memory.rs: {"id", "title", "x", "y", "series": [{"name", "points": [[x, median,
# p99, samples], ...]}]}.

COLORS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f"]
CURVE_ORDER = ["set-eq-waits", "set-pred-waits", "set-subs", "set-queued", "latency-thread",
               "latency-task", "memory-waits", "memory-subs"]


def load_curves(root):
    d = os.path.join(root, "curves")
    if not os.path.isdir(d):
        return []
    out = []
    for name in os.listdir(d):
        if name.endswith(".json"):
            with open(os.path.join(d, name)) as f:
                out.append(json.load(f))
    rank = lambda c: CURVE_ORDER.index(c["id"]) if c["id"] in CURVE_ORDER else len(CURVE_ORDER)
    return sorted(out, key=lambda c: (rank(c), c["id"]))


def fmt_num(v):
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def growth(points):
    """Exponent k of y ~ x^k fitted (least squares, log-log) over the points with x >= FIT_FROM,
    or None when there are fewer than two or x is not a load (latency curves)."""
    pts = [(x, y) for x, y, *_ in points if x >= FIT_FROM and y > 0]
    if len(pts) < 2:
        return None
    lx = [math.log(x) for x, _ in pts]
    ly = [math.log(y) for _, y in pts]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den if den else None


def order(k):
    if k is None:
        return "—"
    if k < 0.15:
        return "O(1)"
    if k > 0.75:
        return "O(n)"
    return "between"


def curve_svg(c, path, subtitle):
    """A line chart: x evenly spaced by point (the loads are decades, so this is a log scale),
    y logarithmic when the values span more than 20×, else linear from 0."""
    series = c["series"]
    xs = sorted({p[0] for s in series for p in s["points"]})
    ys = [p[1] for s in series for p in s["points"] if p[1] > 0]
    if not xs or not ys:
        return
    left, right, top, bottom = 70, 200, 50, 50
    pw, ph = 520, 280
    width, height = left + pw + right, top + ph + bottom
    ylog = max(ys) / min(ys) > 20
    if ylog:
        lo = 10 ** math.floor(math.log10(min(ys)))
        hi = 10 ** math.ceil(math.log10(max(ys)))
        ypos = lambda v: top + ph - ph * (math.log10(max(v, lo)) - math.log10(lo)) / (
            math.log10(hi) - math.log10(lo))
        ticks = [10 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]
    else:
        lo, hi = 0.0, nice(max(ys) * 1.1)
        ypos = lambda v: top + ph - ph * v / hi
        ticks = [hi * i / 5 for i in range(6)]
    step = pw / max(len(xs) - 1, 1)
    xpos = lambda v: left + step * xs.index(v)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(c["title"])}</text>',
        f'<text x="10" y="38" fill="#555">{escape(subtitle)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for t in ticks:
        y = ypos(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(fmt_num(t))}</text>')
    for v in xs:
        out.append(f'<text x="{xpos(v):.1f}" y="{top + ph + 16}" text-anchor="middle">'
                   f'{escape(fmt_num(v))}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{top + ph + 36}" text-anchor="middle">'
               f'{escape(c["x"])}</text>')
    out.append(f'<text x="14" y="{top + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 14 {top + ph / 2})">{escape(c["y"])}'
               f'{" (log scale)" if ylog else ""}</text>')
    bases = []
    for s in series:
        base = s["name"].removesuffix(" p99")
        if base not in bases:
            bases.append(base)
    for i, s in enumerate(series):
        # A p99 series is drawn dashed, in its median's colour.
        color = COLORS[bases.index(s["name"].removesuffix(" p99")) % len(COLORS)]
        dash = ' stroke-dasharray="5,4"' if s["name"].endswith("p99") else ""
        pts = [(xpos(p[0]), ypos(p[1])) for p in s["points"] if p[1] > 0]
        path_d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        out.append(f'<polyline points="{path_d}" fill="none" stroke="{color}" '
                   f'stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
        ly = top + 10 + 20 * i
        out.append(f'<line x1="{left + pw + 12}" x2="{left + pw + 36}" y1="{ly}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{left + pw + 42}" y="{ly + 4}">{escape(s["name"])}</text>')
    out.append("</svg>")
    write(path, out)


def nice(v):
    """The smallest 1, 2 or 5 × 10^k at or above v."""
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def fmt_y(v, unit):
    if unit.startswith("ns"):
        return fmt_time(v)
    return f"{v:.0f} B" if unit.startswith("bytes") else f"{v:.3g}"


def curves_markdown(curves):
    lines = []
    for c in curves:
        xs = sorted({p[0] for s in c["series"] for p in s["points"]})
        lines.append(f"**{c['title']}** ([chart](curve-{c['id']}.svg))\n")
        lines.append("| " + c["x"] + " | " + " | ".join(fmt_num(x) for x in xs)
                     + " | growth over ≥ " + fmt_num(FIT_FROM) + " |")
        lines.append("| --- |" + " ---: |" * len(xs) + " --- |")
        for s in c["series"]:
            at = {p[0]: p[1] for p in s["points"]}
            k = growth(s["points"]) if not c["id"].startswith("latency") else None
            g = f"x^{k:.2f}: {order(k)}" if k is not None else "—"
            if c["id"].startswith("memory") and k is not None:
                g = f"per item x^{k:.2f}: {'constant per item' if abs(k) < 0.15 else 'varies'}"
            lines.append(f"| {s['name']} | "
                         + " | ".join(fmt_y(at[x], c["y"]) if x in at else "—" for x in xs)
                         + f" | {g} |")
        lines.append("")
    return "\n".join(lines)


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-dir", default=os.environ.get(
        "CARGO_TARGET_DIR", os.path.join(here, "target", "bench")))
    ap.add_argument("--svg", default=os.path.join(here, "docs", "bench.svg"),
                    help="the ratio chart")
    ap.add_argument("--curves-dir", default=os.path.join(here, "docs"),
                    help="where the curve charts go (curve-<id>.svg)")
    ap.add_argument("--markdown", help="also write the table and curves here")
    ap.add_argument("--note", default="", help="added to the charts' subtitle (e.g. machine busy)")
    ap.add_argument("--commit", help="the commit measured (default: this tree's HEAD)")
    args = ap.parse_args()
    root = os.path.join(args.target_dir, "criterion")
    if not os.path.isdir(root):
        sys.exit(f"no criterion results under {root}: run the benches first")
    m = medians(root)
    mem = None
    mem_path = os.path.join(root, "memory", "estimates.json")
    if os.path.exists(mem_path):
        with open(mem_path) as f:
            mem = json.load(f)
    rows = build_rows(m)
    mrow = memory_row(mem)
    if mrow:
        rows.append(mrow)
    date = datetime.date.today().isoformat()
    rev = args.commit or commit(here)
    subtitle = f"{machine()}; {date}; {rev}" + (f"; {args.note}" if args.note else "")
    head = (f"Machine: {machine()}; load average at report time: {load()}  \nDate: {date}; "
            f"commit {rev}  \nMedians from one criterion run; ratio = keepwatch median / "
            f"named peer median.\n")
    text = [head, table(rows, mem)]
    ratio_svg(rows, args.svg, subtitle + "; criterion medians from one run")
    text.append(f"\nChart: {os.path.relpath(args.svg, here)}")
    curves = load_curves(root)
    if curves:
        text.append("\n## Cost curves\n")
        text.append(curves_markdown(curves))
        for c in curves:
            curve_svg(c, os.path.join(args.curves_dir, f"curve-{c['id']}.svg"), subtitle)
        text.append("Charts: " + ", ".join(
            os.path.relpath(os.path.join(args.curves_dir, f"curve-{c['id']}.svg"), here)
            for c in curves))
    out = "\n".join(text)
    print(out)
    if args.markdown:
        write(args.markdown, [out])


def commit(here):
    try:
        r = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        return (r.stdout.strip() or "unknown commit") + (" + uncommitted src" if dirty else "")
    except OSError:
        return "unknown commit"


def load():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()

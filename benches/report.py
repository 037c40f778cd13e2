#!/usr/bin/env python3
"""Turns one criterion run of `benches/compare.rs` (and `benches/memory.rs`) into a markdown
table of medians and ratios against the targets of issue 4, and a bar chart of the ratios.

Usage: python3 benches/report.py [--target-dir target/bench] [--svg docs/bench.svg]

Reads <target-dir>/criterion/**/new/estimates.json (stdlib only), prints the table with the
machine and the date, and writes the SVG chart (horizontal bars, ratio = keepwatch / peer,
with each row's target marked).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

# (row, keepwatch bench, peers in the group, named peer, target ratio, note)
# A bench id is criterion's directory path under criterion/: group/function[/parameter].
ROWS = [
    ("set", "set/keepwatch",
     ["set/tokio-watch", "set/watchable", "set/parking_lot-mutex"],
     "set/parking_lot-mutex", 1.2, ""),
    ("get", "get/keepwatch",
     ["get/tokio-watch", "get/parking_lot-mutex", "get/std-rwlock"],
     "get/tokio-watch", 1.1, ""),
    ("fanout/1", "fanout/keepwatch/1",
     ["fanout/tokio-broadcast/1", "fanout/tokio-watch/1"],
     "fanout/tokio-broadcast/1", None, "reference"),
    ("fanout/100", "fanout/keepwatch/100",
     ["fanout/tokio-broadcast/100", "fanout/tokio-watch/100"],
     "fanout/tokio-broadcast/100", None, "reference"),
    ("fanout/1000", "fanout/keepwatch/1000",
     ["fanout/tokio-broadcast/1000", "fanout/tokio-watch/1000"],
     "fanout/tokio-broadcast/1000", 1.0, ""),
    ("fanout/1000 vs fanout/1", "fanout/keepwatch/1000", ["fanout/keepwatch/1"],
     "fanout/keepwatch/1", 1.5, "keepwatch against itself"),
    ("pingpong-thread", "pingpong-thread/keepwatch",
     ["pingpong-thread/crossbeam-channel", "pingpong-thread/std-mpsc",
      "pingpong-thread/flume", "pingpong-thread/mutex-condvar"],
     "pingpong-thread/crossbeam-channel", 1.0, "quiet machine"),
    ("pingpong-thread vs parking", "pingpong-thread/keepwatch",
     ["pingpong-thread/mutex-condvar"],
     "pingpong-thread/mutex-condvar", 1.1, "busy machine"),
    ("pingpong-async", "pingpong-async/keepwatch",
     ["pingpong-async/tokio-watch", "pingpong-async/tokio-mpsc", "pingpong-async/flume"],
     "pingpong-async/tokio-watch", 0.75, ""),
    ("bridge (per 1M)", "bridge/keepwatch",
     ["bridge/flume", "bridge/tokio-mpsc", "bridge/crossbeam-channel"],
     "bridge/flume", 1.0, ""),
    ("herd lockstep", "herd/keepwatch/lockstep",
     ["herd/tokio-watch/lockstep", "herd/mutex-condvar/lockstep"],
     "herd/tokio-watch/lockstep", 0.1, ""),
    ("herd burst", "herd/keepwatch/burst",
     ["herd/tokio-watch/burst", "herd/mutex-condvar/burst"],
     "herd/tokio-watch/burst", 1.0, ""),
]


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


def build_rows(m):
    rows = []
    for name, kw, peers, named, target, note in ROWS:
        k = m.get(kw)
        p = m.get(named)
        ratio = k / p if k is not None and p else None
        if target is None or ratio is None:
            verdict = "—" if ratio is not None else "not run"
        else:
            verdict = "met" if ratio <= target else "missed"
        rows.append(dict(name=name, kw=k, peers=[(x, m.get(x)) for x in peers], named=named,
                         ratio=ratio, target=target, verdict=verdict, note=note))
    return rows


def short(bench):
    parts = bench.split("/")
    return parts[1] if len(parts) > 1 else bench


def table(rows, mem):
    lines = [
        "| workload | keepwatch median | peer medians | ratio vs | ratio | target | verdict |",
        "| --- | ---: | --- | --- | ---: | ---: | --- |",
    ]
    for r in rows:
        peers = "<br>".join(f"{short(b)} {fmt_time(t)}" for b, t in r["peers"])
        ratio = f"{r['ratio']:.2f}×" if r["ratio"] is not None else "—"
        target = f"≤ {r['target']}×" if r["target"] is not None else "—"
        name = r["name"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(f"| {name} | {fmt_time(r['kw'])} | {peers} | {short(r['named'])} "
                     f"| {ratio} | {target} | {r['verdict']} |")
    if mem:
        k, b = mem.get("keepwatch"), mem.get("tokio-broadcast")
        if k and b:
            ratio = k["total"] / b["total"]
            back = k["after_drain"] == 0
            lines.append(
                f"| memory (1,000 subs, 10,000 queued u64) | {k['total']:,} B "
                f"({k['per_subscription']:.0f} B/sub, {k['per_transition']:.1f} B/transition) "
                f"| tokio-broadcast {b['total']:,} B ({b['per_subscription']:.0f} B/sub, "
                f"{b['per_transition']:.1f} B/transition) | tokio-broadcast | {ratio:.2f}× "
                f"| ≤ 1.0× | {'met' if ratio <= 1.0 else 'missed'} |")
            lines.append(
                f"| memory after drain | {k['after_drain']:+,} B | tokio-broadcast "
                f"{b['after_drain']:+,} B | start level | — | 0 B | "
                f"{'met' if back else 'missed'} |")
    return "\n".join(lines)


def svg(rows, mem, path, subtitle):
    bars = [(r["name"], r["ratio"], r["target"]) for r in rows
            if r["ratio"] is not None and r["target"] is not None]
    if mem and mem.get("keepwatch") and mem.get("tokio-broadcast"):
        bars.append(("memory", mem["keepwatch"]["total"] / mem["tokio-broadcast"]["total"], 1.0))
    label_w, bar_w, row_h, top = 230, 460, 26, 56
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
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target-dir", default=os.environ.get(
        "CARGO_TARGET_DIR", os.path.join(here, "target", "bench")))
    ap.add_argument("--svg", default=os.path.join(here, "docs", "bench.svg"))
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
    date = datetime.date.today().isoformat()
    subtitle = f"{machine()}; {date}; criterion medians from one run"
    print(f"Machine: {machine()}  \nDate: {date}  \nMedians from one criterion run; "
          f"ratio = keepwatch median / named peer median.\n")
    print(table(rows, mem))
    svg(rows, mem, args.svg, subtitle)
    print(f"\nChart: {os.path.relpath(args.svg, here)}")


if __name__ == "__main__":
    main()

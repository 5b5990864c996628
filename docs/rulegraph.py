"""Draw the workflow's rule graph as docs/rulegraph.svg, from `snakemake --rulegraph dot` (no Graphviz needed).

The graph is the paper configuration's (`config/paper.yaml`: download instead of the demo's synthesize) for the
targets `all` and `release`. Layout: each rule on the layer of its longest path from a source, layers ordered by
the barycentre of their neighbours, edges implied by a longer path left out. The output is deterministic, so
tests/test_docs.py regenerates it and fails when the workflow changed and this picture did not.
Usage: python docs/rulegraph.py [--check]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "rulegraph.svg"
COMMAND = [sys.executable, "-m", "snakemake", "--rulegraph", "dot", "all", "release", "--configfile",
           "config/paper.yaml", "--config", 'datasets={"ssv2": {"enabled": false}}']
BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 30, 24, 56, 16
STAGE_COLOURS = {"download": "#dbeafe", "index": "#dbeafe", "pretrain": "#fde68a", "linear": "#d1fae5",
                 "finetune": "#d1fae5", "table": "#fbcfe8", "figure": "#fbcfe8"}


def rule_graph() -> tuple[list[str], list[tuple[str, str]]]:
    """(rule names, edges producer -> consumer) of the workflow, from Snakemake itself."""
    dot = subprocess.run(COMMAND, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, re.M))
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M)}
    return sorted(names.values()), reduced(edges)


def reduced(edges: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Transitive reduction: a -> c is left out where a path a -> b -> ... -> c exists (readability)."""
    after: dict[str, set[str]] = {}
    for a, b in edges:
        after.setdefault(a, set()).add(b)

    def implied(a: str, c: str) -> bool:  # c reachable from a without the edge a -> c itself
        seen, todo = set(), [b for b in after[a] if b != c]
        while todo:
            node = todo.pop()
            if node == c:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(after.get(node, ()))
        return False

    return sorted(e for e in edges if not implied(*e))


def layers(rules: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Longest-path layering, then four sweeps of barycentre ordering to reduce crossings."""
    depth = {r: 0 for r in rules}
    for _ in rules:  # relax: at most len(rules) rounds on a DAG
        for a, b in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    rows = [sorted(r for r in rules if depth[r] == d) for d in range(max(depth.values()) + 1)]
    for sweep in range(4):
        order = range(1, len(rows)) if sweep % 2 == 0 else range(len(rows) - 2, -1, -1)
        for i in order:
            ref = rows[i - 1] if sweep % 2 == 0 else rows[i + 1]
            pos = {r: k for k, r in enumerate(ref)}
            linked = {r: [pos[a] for a, b in edges if b == r and a in pos] + [pos[b] for a, b in edges
                                                                             if a == r and b in pos] for r in rows[i]}
            rows[i] = sorted(rows[i], key=lambda r: (sum(linked[r]) / len(linked[r]) if linked[r] else 1e9, r))
    return rows


def colour(rule: str) -> str:
    return next((c for key, c in STAGE_COLOURS.items() if key in rule), "#f3f4f6")


def svg(rules: list[str], edges: list[tuple[str, str]]) -> str:
    rows = layers(rules, edges)
    width = max(len(r) for r in rows) * (BOX_W + GAP_X) - GAP_X + 2 * PAD
    height = len(rows) * (BOX_H + GAP_Y) - GAP_Y + 2 * PAD
    at = {}
    for i, row in enumerate(rows):
        left = (width - (len(row) * (BOX_W + GAP_X) - GAP_X)) / 2
        for k, r in enumerate(row):
            at[r] = (left + k * (BOX_W + GAP_X), PAD + i * (BOX_H + GAP_Y))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>',
           f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>']
    for a, b in edges:
        (xa, ya), (xb, yb) = at[a], at[b]
        x1, y1, x2, y2 = xa + BOX_W / 2, ya + BOX_H, xb + BOX_W / 2, yb
        mid = (y1 + y2) / 2
        out.append(f'<path d="M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} {x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}" '
                   f'fill="none" stroke="#9ca3af" stroke-width="1.3" marker-end="url(#arrow)"/>')
    for r in rules:
        x, y = at[r]
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{colour(r)}" '
                   f'stroke="#374151"/><text x="{x + BOX_W / 2:.1f}" y="{y + BOX_H / 2 + 4:.1f}" '
                   f'text-anchor="middle">{escape(r)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true", help="exit 1 if docs/rulegraph.svg is not the current graph")
    args = p.parse_args()
    picture = svg(*rule_graph())
    if args.check:
        current = OUT.exists() and OUT.read_text() == picture
        print("docs/rulegraph.svg is current" if current else "docs/rulegraph.svg is stale: python docs/rulegraph.py")
        return 0 if current else 1
    OUT.write_text(picture)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark's results as a plain table or as markdown (for docs/benchmark.md).

Pure: takes the samples, returns text.  A median is over the successful samples of a cell; a
cell with failures says how many; a tool that could not run says "n/a".  The ratio is
pybuild's median over the fastest other tool's median, checked against issue 4's targets.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

TARGETS = {"cold": 1.0, "warm": 1.5}
RSS_TARGET_MB = 100.0
TOOLS = ("pybuild", "buildkit", "buildah")


@dataclass(frozen=True)
class Row:
    """One case × tool: every sample in seconds, None where that build failed."""
    case: str
    tool: str
    cold: list[float | None]
    warm: list[float | None]

    def median(self, kind: str) -> float | None:
        ok = [s for s in getattr(self, kind) if s is not None]
        return statistics.median(ok) if ok else None

    def failures(self, kind: str) -> int:
        return sum(1 for s in getattr(self, kind) if s is None)

    def as_dict(self) -> dict:
        return {"case": self.case, "tool": self.tool, "cold": self.cold, "warm": self.warm,
                "cold_median": self.median("cold"), "warm_median": self.median("warm")}


@dataclass(frozen=True)
class RssResult:
    vm_hwm_kb: int      # the pybuild Python process's own peak (VmHWM)
    tree_max_kb: int    # wait4 ru_maxrss: the largest single process of its tree
    seconds: float

    @property
    def mb(self) -> float:
        return self.vm_hwm_kb * 1024 / 1e6

    def as_dict(self) -> dict:
        return {"vm_hwm_kb": self.vm_hwm_kb, "tree_max_kb": self.tree_max_kb,
                "seconds": self.seconds, "target_mb": RSS_TARGET_MB,
                "met": self.mb < RSS_TARGET_MB}


def _cell(row: Row | None, kind: str) -> str:
    if row is None:
        return "n/a"
    m = row.median(kind)
    failed = row.failures(kind)
    if m is None:
        return "failed"
    return f"{m:.2f}" + (f" ({failed} failed)" if failed else "")


def _ratio(rows: dict[str, Row], kind: str, others: list[str]) -> str:
    mine = rows.get("pybuild")
    theirs = [(r.median(kind), t) for t, r in rows.items()
              if t in others and r.median(kind) is not None]
    if mine is None or mine.median(kind) is None or not theirs:
        return "n/a"
    best, who = min(theirs)
    text = _verdict(mine.median(kind) / best, who, kind)
    # issue 4 states its targets against BuildKit: say so too when another tool is faster.
    if who != "buildkit" and "buildkit" in rows and rows["buildkit"].median(kind) is not None:
        text += "; " + _verdict(mine.median(kind) / rows["buildkit"].median(kind), "buildkit", kind)
    return text


def _verdict(ratio: float, who: str, kind: str) -> str:
    return f"{ratio:.2f} vs {who} ({'met' if ratio <= TARGETS[kind] else 'MISSED'})"


def _table(rows: list[Row], others: list[str]) -> tuple[list[str], list[list[str]]]:
    head = ["case", "tool", "cold s", "warm s",
            f"pybuild/fastest cold (≤ {TARGETS['cold']})",
            f"pybuild/fastest warm (≤ {TARGETS['warm']})"]
    body = []
    cases = list(dict.fromkeys(r.case for r in rows))
    for case in cases:
        by_tool = {r.tool: r for r in rows if r.case == case}
        for tool in ["pybuild", *others]:
            row = by_tool.get(tool)
            mine = tool == "pybuild"
            body.append([case, tool, _cell(row, "cold"), _cell(row, "warm"),
                         _ratio(by_tool, "cold", others) if mine else "",
                         _ratio(by_tool, "warm", others) if mine else ""])
    return head, body


def _rss_line(rss) -> str | None:
    if rss is None:
        return None
    if isinstance(rss, str):
        return f"pybuild peak RSS capturing a 1 GiB layer: {rss}"
    verdict = "met" if rss.mb < RSS_TARGET_MB else "MISSED"
    return (f"pybuild peak RSS capturing a 1 GiB layer: {rss.mb:.1f} MB (Python process VmHWM; "
            f"largest process of its tree {rss.tree_max_kb * 1024 / 1e6:.1f} MB), "
            f"target < {RSS_TARGET_MB:.0f} MB: {verdict}; the build took {rss.seconds:.1f} s")


def _preamble(info: dict, versions: dict, unavailable: dict, runs: int) -> list[str]:
    lines = [f"{info['date']}; {info['cpus']} CPUs ({info['cpu']}), {info['memory']} RAM, "
             f"{info['kernel']}, Python {info['python']}; median of {runs} runs, wall-clock s"]
    lines += [f"{tool}: {v}" for tool, v in versions.items()]
    lines += [f"{tool}: n/a ({why.splitlines()[0]})" for tool, why in unavailable.items()]
    return lines


def text_report(rows, rss, *, info, versions, unavailable, others, runs) -> str:
    head, body = _table(rows, others)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = _preamble(info, versions, unavailable, runs) + [""]
    out.append(fmt.format(*head).rstrip())
    out.append(fmt.format(*["-" * w for w in widths]))
    out += [fmt.format(*r).rstrip() for r in body]
    line = _rss_line(rss)
    if line:
        out += ["", line]
    return "\n".join(out)


def markdown_report(rows, rss, *, info, versions, unavailable, others, runs) -> str:
    head, body = _table(rows, others)
    out = [f"- {line}" for line in _preamble(info, versions, unavailable, runs)] + [""]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|")
    out += ["| " + " | ".join(r) + " |" for r in body]
    line = _rss_line(rss)
    if line:
        out += ["", line + "."]
    return "\n".join(out)

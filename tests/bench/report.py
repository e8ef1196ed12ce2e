"""The benchmark's results as plain tables or as markdown (for docs/benchmark.md).

Pure: takes the samples, returns text.  Two tables:

- the times of each repeat: per case and tool, min / median / max wall-clock seconds of each
  phase (cold, warm, edit) over the successful builds; a cell with failures says how many; a
  tool that could not run says "n/a"; the ``floor`` row is the case's RUN alone in a chroot;
- the ratios: pybuild's median over BuildKit's median (or the floor's), one column per repeat,
  their spread across repeats, and the verdict against issue 14's targets.  A ratio whose
  either side has no successful build is "n/a" and says which tool failed.

Then the peak-RSS line of each repeat, every failure (tool, case, phase, run, first line of
its output), and the sanity checks on image IDs that did not hold.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

PHASES = ("cold", "warm", "edit")
RSS_TARGET_MB = 100.0


@dataclass(frozen=True)
class Target:
    """pybuild's median in ``phase`` over ``against``'s (a tool, or "floor") must be ≤ ``limit``
    on ``cases`` (None: every case that has the phase)."""
    phase: str
    limit: float
    against: str = "buildkit"
    cases: tuple[str, ...] | None = None

    def applies(self, case: str) -> bool:
        return self.cases is None or case in self.cases


# Issue 14's targets, each against BuildKit (or the floor) in the same run.
TARGETS = (
    Target("cold", 1.0),
    Target("warm", 1.0),
    Target("edit", 0.5, cases=("addrun", "copyapp")),
    Target("cold", 1.2, against="floor", cases=("big",)),
)


@dataclass(frozen=True)
class Row:
    """One repeat × case × tool: every sample in seconds per phase, None where that build
    failed; an empty list where the case (or tool) has no such phase."""
    repeat: int
    case: str
    tool: str
    cold: list[float | None] = field(default_factory=list)
    warm: list[float | None] = field(default_factory=list)
    edit: list[float | None] = field(default_factory=list)

    def samples(self, phase: str) -> list[float | None]:
        return getattr(self, phase)

    def ok(self, phase: str) -> list[float]:
        return [s for s in self.samples(phase) if s is not None]

    def median(self, phase: str) -> float | None:
        ok = self.ok(phase)
        return statistics.median(ok) if ok else None

    def failures(self, phase: str) -> int:
        return sum(1 for s in self.samples(phase) if s is None)

    def as_dict(self) -> dict:
        d = asdict(self)
        for phase in PHASES:
            ok = self.ok(phase)
            d[f"{phase}_min_median_max"] = (
                [min(ok), statistics.median(ok), max(ok)] if ok else None)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Row:
        return cls(d["repeat"], d["case"], d["tool"], d.get("cold", []), d.get("warm", []),
                   d.get("edit", []))


@dataclass(frozen=True)
class Failure:
    """A build that exited non-zero or timed out; ``run`` None: an untimed build (warm-up or
    cache fill), whose failure makes the timed runs after it suspect."""
    repeat: int
    case: str
    phase: str
    tool: str
    run: int | None
    message: str

    def line(self) -> str:
        when = f"run {self.run}" if self.run is not None else "untimed"
        lines = [ln.strip() for ln in self.message.splitlines() if ln.strip()]
        said = lines[0] if lines else ""
        if len(lines) > 1:
            said += f" … {lines[-1]}"
        return f"repeat {self.repeat}, {self.case} {self.phase} {when}, {self.tool}: {said}"


@dataclass(frozen=True)
class RssResult:
    repeat: int
    vm_hwm_kb: int      # the pybuild Python process's own peak (VmHWM)
    tree_max_kb: int    # wait4 ru_maxrss: the largest single process of its tree
    seconds: float
    error: str = ""     # the build failed: why (the other fields are then 0)

    @property
    def mb(self) -> float:
        return self.vm_hwm_kb * 1024 / 1e6

    def as_dict(self) -> dict:
        return {**asdict(self), "target_mb": RSS_TARGET_MB,
                "met": not self.error and self.mb < RSS_TARGET_MB}


@dataclass(frozen=True)
class Results:
    info: dict
    versions: dict
    unavailable: dict
    runs: int
    repeats: int
    rows: list[Row]
    rss: list[RssResult]
    failures: list[Failure]
    checks: list[str]       # sanity checks that did not hold (a warm build that was not cached…)
    cases: list[str] = field(default_factory=list)   # in order; "" order of rows otherwise


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _cell(row: Row | None, phase: str) -> str:
    if row is None:
        return "n/a"
    samples = row.samples(phase)
    if not samples:
        return ""
    ok = row.ok(phase)
    failed = row.failures(phase)
    if not ok:
        return f"failed ({failed}/{len(samples)})"
    text = " / ".join(_fmt(x) for x in (min(ok), statistics.median(ok), max(ok)))
    return text + (f" ({failed} failed)" if failed else "")


def _case_order(res: Results) -> list[str]:
    return res.cases or list(dict.fromkeys(r.case for r in res.rows))


def _tools(res: Results) -> list[str]:
    seen = list(dict.fromkeys(r.tool for r in res.rows if r.tool != "floor"))
    return seen + [t for t in res.unavailable if t not in seen]


def times_table(res: Results, repeat: int) -> tuple[list[str], list[list[str]]]:
    head = ["case", "tool"] + [f"{p} s min / med / max" for p in PHASES]
    body = []
    for case in _case_order(res):
        by_tool = {r.tool: r for r in res.rows if r.case == case and r.repeat == repeat}
        if not by_tool:
            continue
        for tool in _tools(res) + (["floor"] if "floor" in by_tool else []):
            row = by_tool.get(tool)
            body.append([case, tool] + [_cell(row, p) for p in PHASES])
    return head, body


def _ratio(res: Results, repeat: int, case: str, phase: str, against: str) -> float | str:
    """pybuild's median over ``against``'s, or why there is none."""
    rows = {r.tool: r for r in res.rows if r.repeat == repeat and r.case == case}
    mine, theirs = rows.get("pybuild"), rows.get(against)
    if theirs is None:
        return f"{against} n/a" if against in res.unavailable else "not run"
    if mine is None:
        return "pybuild n/a"
    a, b = mine.median(phase), theirs.median(phase)
    if a is None:
        return "pybuild failed"
    if b is None:
        return f"{against} failed"
    return a / b


def _failed_builds(res: Results, repeat: int, case: str, phase: str, against: str) -> int:
    """Failed builds on either side of a ratio: its medians are over the builds that remain."""
    return sum(r.failures(phase) for r in res.rows if r.repeat == repeat and r.case == case
               and r.tool in ("pybuild", against))


def _verdict(ratios: list[float | str], limit: float | None) -> str:
    nums = [r for r in ratios if isinstance(r, float)]
    if limit is None:
        return "(no target)"
    if len(nums) < len(ratios):
        reasons = sorted({r for r in ratios if isinstance(r, str)})
        return "n/a: " + ", ".join(reasons)
    met = sum(1 for r in nums if r <= limit)
    if met == len(nums):
        return "met"
    if met == 0:
        return "MISSED"
    return f"met in {met}/{len(nums)} repeats"


def _spread(values: list[float | str], unit: str = "") -> str:
    """max − min of the values, and that as a share of their mean; "—" below two values."""
    nums = [r for r in values if isinstance(r, float)]
    if len(nums) < 2:
        return "—"
    lo, hi = min(nums), max(nums)
    return f"{hi - lo:.2f}{unit} ({(hi - lo) / statistics.mean(nums) * 100:.0f} %)"


@dataclass(frozen=True)
class RatioLine:
    """One line of the ratio table: pybuild over ``against`` in ``phase`` on ``case``, per
    repeat (a float, or why there is none), with the failed builds behind each."""
    phase: str
    against: str
    case: str
    limit: float | None
    ratios: list[float | str]
    failed: list[int]


def ratio_lines(res: Results) -> list[RatioLine]:
    """One line per (case, phase) that pybuild and BuildKit both have, with its target if
    issue 14 sets one; the floor line of each case that has a floor row."""
    reps = range(1, res.repeats + 1)
    out = []
    for case in _case_order(res):
        rows = [r for r in res.rows if r.case == case]
        compared = any(r.tool == "buildkit" for r in rows) or "buildkit" in res.unavailable
        pairs = [(phase, "buildkit") for phase in PHASES if compared
                 and any(r.samples(phase) for r in rows if r.tool == "pybuild")]
        if any(r.tool == "floor" for r in rows):
            pairs.append(("cold", "floor"))
        for phase, against in pairs:
            target = next((t for t in TARGETS if t.phase == phase and t.against == against
                           and t.applies(case)), None)
            out.append(RatioLine(phase, against, case, target.limit if target else None,
                                 [_ratio(res, r, case, phase, against) for r in reps],
                                 [_failed_builds(res, r, case, phase, against) for r in reps]))
    return out


def ratio_table(res: Results) -> tuple[list[str], list[list[str]]]:
    reps = list(range(1, res.repeats + 1))
    head = ["ratio", "case", "target"] + [f"repeat {r}" for r in reps] + ["spread", "verdict"]
    body = []
    for ln in ratio_lines(res):
        cells = [(_fmt(x) if isinstance(x, float) else x) + (f" ({n} failed)" if n else "")
                 for x, n in zip(ln.ratios, ln.failed)]
        verdict = _verdict(ln.ratios, ln.limit) + (", with failed builds" if any(ln.failed) else "")
        body.append([f"{ln.phase} pybuild/{ln.against}", ln.case,
                     f"≤ {ln.limit}" if ln.limit is not None else "—"]
                    + cells + [_spread(ln.ratios), verdict])
    if res.rss:
        cells = []
        for r in reps:
            got = next((x for x in res.rss if x.repeat == r), None)
            cells.append("not run" if got is None else
                         "failed" if got.error else f"{got.mb:.1f} MB")
        ok = [x for x in res.rss if not x.error]
        verdict = ("n/a: failed" if len(ok) < len(res.rss) else
                   _verdict([x.mb for x in ok], RSS_TARGET_MB))
        body.append(["pybuild peak RSS, 1 GiB layer", "rss", f"< {RSS_TARGET_MB:.0f} MB"]
                    + cells + [_spread([x.mb for x in ok], " MB"), verdict])
    return head, body


def stability_line(res: Results) -> str | None:
    """How far the repeats' ratios lie apart: the median and the largest relative spread
    (max − min over the mean), and how many target verdicts the repeats disagree on."""
    if res.repeats < 2:
        return None
    spreads = []
    mixed = targets = 0
    for ln in ratio_lines(res):
        nums = [x for x in ln.ratios if isinstance(x, float)]
        if len(nums) == len(ln.ratios):
            spreads.append(((max(nums) - min(nums)) / statistics.mean(nums),
                            f"{ln.phase} {ln.case}"))
        if ln.limit is not None:
            targets += 1
            mixed += _verdict(ln.ratios, ln.limit).startswith("met in ")
    if not spreads:
        return None
    worst = max(spreads)
    return (f"stability across {res.repeats} repeats: each ratio's spread (max − min over its "
            f"mean) is {statistics.median(x for x, _ in spreads) * 100:.0f} % at the median, "
            f"{worst[0] * 100:.0f} % at most ({worst[1]}); {mixed} of {targets} target "
            f"verdicts differ between repeats")


def _preamble(res: Results) -> list[str]:
    info = res.info
    lines = [f"{info['date']}; {info['cpus']} CPUs ({info['cpu']}), {info['memory']} RAM, "
             f"{info['kernel']}, Python {info['python']}; {res.repeats} repeat(s) of "
             f"{res.runs} timed runs per tool and phase, wall-clock s"]
    lines += [f"{tool}: {v}" for tool, v in res.versions.items()]
    lines += [f"{tool}: n/a ({why.splitlines()[0]})" for tool, why in res.unavailable.items()]
    return lines


def _notes(res: Results) -> list[str]:
    out = []
    for r in res.rss:
        if r.error:
            out.append(f"repeat {r.repeat}: pybuild peak RSS capturing a 1 GiB layer: failed: "
                       f"{r.error.splitlines()[0] if r.error else ''}")
        else:
            out.append(f"repeat {r.repeat}: pybuild peak RSS capturing a 1 GiB layer: "
                       f"{r.mb:.1f} MB (Python process VmHWM; largest process of its tree "
                       f"{r.tree_max_kb * 1024 / 1e6:.1f} MB); the build took {r.seconds:.1f} s")
    if res.failures:
        out.append(f"{len(res.failures)} build(s) FAILED:")
        out += [f"  {f.line()}" for f in res.failures]
    if res.checks:
        out.append(f"{len(res.checks)} sanity check(s) did not hold:")
        out += [f"  {c}" for c in res.checks]
    return out


def _text_table(head: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return ([fmt.format(*head).rstrip(), fmt.format(*["-" * w for w in widths])]
            + [fmt.format(*r).rstrip() for r in body])


def _md_table(head: list[str], body: list[list[str]]) -> list[str]:
    right = {i for i, h in enumerate(head) if " s " in h or h.startswith("repeat")
             or h == "spread"}
    return (["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|"]
            + ["| " + " | ".join(r) + " |" for r in body])


def render(res: Results, *, markdown: bool) -> str:
    table = _md_table if markdown else _text_table
    out = [f"- {ln}" if markdown else ln for ln in _preamble(res)]
    for r in range(1, res.repeats + 1):
        out += ["", f"Times, repeat {r} of {res.repeats} (seconds):", ""]
        out += table(*times_table(res, r))
    out += ["", "pybuild's ratios (median over median, per repeat), against issue 14's targets:", ""]
    out += table(*ratio_table(res))
    notes = _notes(res)
    stable = stability_line(res)
    if stable:
        notes.insert(0, stable)
    if notes:
        out += [""] + ([f"- {n}" if not n.startswith("  ") else f"  - {n.strip()}" for n in notes]
                       if markdown else notes)
    return "\n".join(out)

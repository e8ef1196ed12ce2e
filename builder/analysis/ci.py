"""CI gates, with dive's rules, defaults, config file and report shape.

    rules:                                  # .dive-ci (YAML), or --ci-config FILE
      lowest-efficiency: 0.95               # fail if efficiency < 0.95       (default 0.9)
      highest-wasted-bytes: 20MB            # fail if wastedBytes > 20 MB     (default disabled)
      highest-user-wasted-percent: 0.20     # fail if wastedBytes/userSizeBytes > 0.2 (default 0.1)
      highest-reclaimable-bytes: 10MB       # ours: fail if reclaimableBytes > 10 MB (default disabled)

dive's older camelCase names (``lowestEfficiency`` …) are read too, with a warning, and win
over the new ones as in dive.  ``disabled``, ``off``, ``false`` or an empty value switch a rule
off.  Sizes are parsed as dive parses them (units.parse_bytes).  A bad value or an unknown rule
raises CIConfigError naming FILE:LINE of its key (exit 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from builder.analysis.image import Analysis
from builder.analysis.units import format_bytes, go_float, parse_bytes
from builder.errors import CIConfigError

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass(frozen=True)
class RuleSpec:
    """A rule: its config name, dive's camelCase name (its key in the report), its default,
    and how its threshold is read (``kind``: "ratio" in 0..1 or "bytes")."""

    name: str
    legacy: str
    default: str
    kind: str
    metric: Callable[[Analysis], float]
    fails: Callable[[float, float], bool]
    describe: str                            # "{value} … {threshold}" for a failure


RULES = (
    RuleSpec("lowest-efficiency", "lowestEfficiency", "0.9", "ratio", lambda a: a.dive.score,
             lambda value, limit: limit > value, "efficiency {value:.2f} is below {limit}"),
    RuleSpec("highest-wasted-bytes", "highestWastedBytes", "disabled", "bytes",
             lambda a: a.dive.wasted_bytes, lambda value, limit: value > limit,
             "{value:.0f} bytes wasted, more than {limit:.0f}"),
    RuleSpec("highest-user-wasted-percent", "highestUserWastedPercent", "0.1", "ratio",
             lambda a: a.dive.wasted_user_percent, lambda value, limit: value > limit,
             "{value:.2f} of the user bytes wasted, more than {limit}"),
    RuleSpec("highest-reclaimable-bytes", "highestReclaimableBytes", "disabled", "bytes",
             lambda a: a.reclaimable_bytes, lambda value, limit: value > limit,
             "{value:.0f} bytes reclaimable, more than {limit:.0f}"),
)


@dataclass(frozen=True)
class Rule:
    spec: RuleSpec
    value: str                               # as configured
    threshold: float | None                  # None: disabled

    @property
    def key(self) -> str:
        return self.spec.legacy


@dataclass(frozen=True)
class Result:
    rule: Rule
    status: str
    message: str


def is_disabled(value: str) -> bool:
    return value.strip().lower() in ("", "disabled", "off", "false")


def make_rule(spec: RuleSpec, value: str, where: str) -> Rule:
    """The rule ``spec`` set to ``value``; CIConfigError "<where>: …" when it is not valid."""
    if is_disabled(value):
        return Rule(spec, value, None)
    try:
        threshold = float(parse_bytes(value)) if spec.kind == "bytes" else go_float(value)
    except ValueError as e:
        raise CIConfigError(f"{where}: {spec.name}: {e}") from None
    if spec.kind == "ratio" and (threshold < 0 or threshold > 1):
        raise CIConfigError(f"{where}: {spec.name}: {value} is outside 0..1 (a ratio: 0.9 is 90 %)")
    return Rule(spec, value, threshold)


def default_rules() -> list[Rule]:
    return [make_rule(s, s.default, "default") for s in RULES]


def load_rules(path: Path, *, explicit: bool, warn: Callable[[str], None]) -> list[Rule]:
    """The rules of the CI config at ``path`` over the defaults; a missing file gives the
    defaults, unless it was named (``explicit``): then it is an error."""
    if not path.is_file():
        if explicit:
            raise CIConfigError(f"{path}: no such CI config file")
        return default_rules()
    try:
        root = yaml.compose(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise CIConfigError(f"{path}: cannot read: {e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CIConfigError(f"{path}{line}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    chosen: dict[str, tuple[str, str]] = {s.name: (s.default, "default") for s in RULES}
    legacy: dict[str, tuple[str, str]] = {}
    rules_node = _rules_node(root, path)
    by_name = {s.name: s for s in RULES} | {s.legacy: s for s in RULES}
    for key, value in rules_node.value if rules_node is not None else ():
        where = f"{path}:{key.start_mark.line + 1}"
        spec = by_name.get(key.value) if isinstance(key, yaml.ScalarNode) else None
        if spec is None:
            known = ", ".join(s.name for s in RULES)
            raise CIConfigError(f"{where}: unknown rule {getattr(key, 'value', '?')!r} (the rules: {known})")
        if not isinstance(value, yaml.ScalarNode):
            raise CIConfigError(f"{where}: {key.value}: expected a value, not a list or a map")
        text = "" if value.tag == "tag:yaml.org,2002:null" else value.value
        if key.value == spec.legacy:
            warn(f"{where}: {spec.legacy} is deprecated: write {spec.name}")
            if text:                                 # a non-empty camelCase value wins, as in dive
                legacy[spec.name] = (text, where)
        else:
            chosen[spec.name] = (text, where)
    chosen |= legacy
    return [make_rule(s, *chosen[s.name]) for s in RULES]


def _rules_node(root: yaml.Node | None, path: Path) -> yaml.MappingNode | None:
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        raise CIConfigError(f"{path}:{root.start_mark.line + 1}: expected a map with a rules: key")
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "rules":
            if value.tag == "tag:yaml.org,2002:null":
                return None
            if not isinstance(value, yaml.MappingNode):
                raise CIConfigError(f"{path}:{key.start_mark.line + 1}: rules: expected a map of rule: value")
            return value
    return None


def evaluate(analysis: Analysis, rules: list[Rule]) -> list[Result]:
    """Each rule's result, in dive's report order (by key)."""
    out = []
    for rule in rules:
        if rule.threshold is None:
            out.append(Result(rule, SKIP, "disabled"))
            continue
        value = float(rule.spec.metric(analysis))
        if rule.spec.fails(value, rule.threshold):
            limit = rule.value if rule.spec.kind == "ratio" else rule.threshold
            out.append(Result(rule, FAIL, rule.spec.describe.format(value=value, limit=limit)))
        else:
            out.append(Result(rule, PASS, rule.value))
    return sorted(out, key=lambda r: r.rule.key)


def passed(results: list[Result]) -> bool:
    return all(r.status != FAIL for r in results)


def report(analysis: Analysis, results: list[Result]) -> str:
    """The CI report in dive's shape: Analysis, Inefficient Files, Evaluation, then the
    summary line ``PASS [pass:2 skip:1]``."""
    d = analysis.dive
    wasted = f"({format_bytes(d.wasted_bytes)})" if d.wasted_bytes else ""
    user = f"{d.wasted_user_percent * 100:.2f} %" if d.wasted_bytes else "0 %"
    lines = ["Analysis:",
             _kv("efficiency", f"{d.score * 100:.2f} %"),
             _kv("wastedBytes", f"{d.wasted_bytes} bytes {wasted}".rstrip()),
             _kv("userWastedPercent", user),
             _kv("reclaimableBytes", f"{analysis.reclaimable_bytes} bytes "
                                     f"({format_bytes(analysis.reclaimable_bytes)})"),
             ""]
    if not d.inefficient:
        lines.append("Inefficient Files: (None)")
    else:
        lines.append("Inefficient Files:")
        lines.append(f"  {'Count':<5}  {'Wasted Space':<12}  File Path")
        lines += [f"  {r.count!s:<5}  {format_bytes(r.cumulative):<12}  {r.path}" for r in d.inefficient]
    lines += ["", "Evaluation:"]
    lines += [f"  {r.status}  {r.rule.key} ({r.message})" for r in results]
    tally = [(k, sum(r.status == s for r in results)) for k, s in (("pass", PASS), ("fail", FAIL), ("skip", SKIP))]
    summary = " ".join(f"{k}:{n}" for k, n in tally if n)
    lines += ["", f"{'PASS' if passed(results) else 'FAIL'} [{summary}]"]
    return "\n".join(lines) + "\n"


def _kv(key: str, value: str) -> str:
    return f"  {key + ':':<18} {value}"

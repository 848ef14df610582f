"""deploy/prometheus: rules, rule tests, configuration, and the alerts' runbooks.

Owns `prometheus-rules`, `prometheus-tests`, `prometheus-config` and `alert-runbooks`. The
rules, tests and configuration are judged by promtool; this module only prepares its input
and reads docs/OPERATIONS.md for the anchors.
"""

from __future__ import annotations

import copy
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from deploycheck.promtool import promtool
from deploycheck.report import load, raise_if

SEVERITIES = ("critical", "warning", "info")


def alerts(rules: dict) -> list[dict]:
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def check_rules(path: Path) -> str:
    promtool("check", "rules", str(path))
    return f"{path.name}: {len(alerts(load(path)))} alerting rules are valid"


def strip_annotations(rules: dict) -> dict:
    """The rules without annotations: the rule tests hold expressions, `for` and labels;
    alert-runbooks checks the annotations."""
    out = copy.deepcopy(rules)
    for g in out["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)
    return out


def run_rule_tests(rules_path: Path, tests_path: Path) -> str:
    with tempfile.TemporaryDirectory() as work:
        with open(Path(work) / rules_path.name, "w") as f:
            yaml.safe_dump(strip_annotations(load(rules_path)), f, sort_keys=False)
        shutil.copy(tests_path, work)
        promtool("test", "rules", str(Path(work) / tests_path.name))
    cases = load(tests_path).get("tests", [])
    return f"{len(cases)} alert test cases pass"


def check_config(path: Path) -> str:
    promtool("check", "config", str(path))
    return f"{path.name} and its rule files are valid"


# ---------------------------------------------------------------------------- runbooks
def anchor(alert: str) -> str:
    """WaOnboardIngress5xxRatio -> wa-onboard-ingress-5xx-ratio"""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])", "-", alert).lower()


def github_slugs(markdown: str) -> set[str]:
    """The anchors a Markdown file offers: heading slugs as GitHub makes them, explicit
    `{#id}`s and HTML `id=`/`name=` attributes."""
    slugs = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"\{#([^}]+)\}\s*$", "", m.group(1)).strip()
            slugs.add(re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-"))
    slugs |= set(re.findall(r"""(?:id|name)=["']([^"']+)["']""", markdown))
    slugs |= set(re.findall(r"\{#([^}\s]+)\}", markdown))
    return slugs


def runbook_problems(rules: dict[str, Any], operations_md: str | None) -> tuple[list[str], list[str]]:
    """Every alert has a severity, a summary and the runbook docs/OPERATIONS.md#<anchor>, and
    (when `operations_md` is given) that anchor exists. Returns the problems and the anchors."""
    problems, anchors = [], []
    for r in alerts(rules):
        name = r["alert"]
        want = f"docs/OPERATIONS.md#{anchor(name)}"
        ann = r.get("annotations", {})
        if ann.get("runbook") != want:
            problems.append(f"{name}: runbook annotation is {ann.get('runbook')!r}, want {want!r}")
        if not ann.get("summary"):
            problems.append(f"{name}: no summary annotation")
        if r.get("labels", {}).get("severity") not in SEVERITIES:
            problems.append(f"{name}: severity label is not critical, warning or info")
        if anchor(name) not in anchors:
            anchors.append(anchor(name))
    if operations_md is not None:
        slugs = github_slugs(operations_md)
        problems += [f"docs/OPERATIONS.md has no anchor #{a}" for a in anchors if a not in slugs]
    return problems, anchors


def check_runbooks(rules_path: Path, operations_path: Path) -> str:
    text = operations_path.read_text() if operations_path.exists() else None
    problems, anchors = runbook_problems(load(rules_path), text)
    raise_if(problems)
    note = "anchors resolve in docs/OPERATIONS.md" if text is not None else \
        "docs/OPERATIONS.md not there yet: anchors not resolved"
    return f"{len(anchors)} alerts with severity, summary and runbook ({note}): " + " ".join(anchors)

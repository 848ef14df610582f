"""deploy/grafana: dashboards, their provisioning, and the PromQL of every panel.

Owns `grafana`. Panel queries are parsed by promtool (as recording rules); this module checks
the dashboard structure and that docker-compose.yml mounts each dashboard where a provisioning
provider looks. Never reads Prometheus' own rules.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from deploycheck.promtool import promtool
from deploycheck.report import load_all, raise_if

# Grafana's built-in interval variables, replaced by a value of the same type so that promtool
# can parse the query; any other `$variable` in a query is reported.
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def promql_of(expr: str) -> str | None:
    """The query with Grafana's interval variables replaced; None if another variable is left."""
    for variable, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, value)
    return None if "$" in expr else expr


def provisioning(prov: Path) -> tuple[set[str], set[str]]:
    """The data source uids and the dashboard provider paths of Grafana's provisioning files."""
    uids, paths = set(), set()
    for path in sorted((prov / "datasources").iterdir()):
        for doc in load_all(path):
            uids |= {d["uid"] for d in doc.get("datasources", [])}
    for path in sorted((prov / "dashboards").iterdir()):
        for doc in load_all(path):
            paths |= {p["options"]["path"] for p in doc.get("providers", [])}
    return uids, paths


def mount_problems(dashboards: list[str], grafana_service: dict, provider_paths: set[str]) -> list[str]:
    """Each dashboard file is bind-mounted by docker-compose.yml into a provisioned folder."""
    mounts = grafana_service.get("volumes", [])
    return [
        f"{fn}: not mounted by docker-compose.yml into a provisioned dashboard folder {sorted(provider_paths)}"
        for fn in dashboards
        if not any(m.startswith(f"./deploy/grafana/{fn}:") and m.split(":")[1].rsplit("/", 1)[0] in provider_paths
                   for m in mounts)
    ]


def dashboard_problems(fn: str, dash: dict[str, Any], ds_uids: set[str]) -> tuple[list[str], list[dict]]:
    """The structure of one dashboard; returns the problems and each panel query as a
    recording rule (`dashboard:panel_<id>_<refId>`) for promtool."""
    problems = [f"{fn}: no {key}" for key in ("uid", "title", "panels", "schemaVersion") if key not in dash]
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds_var = variables.get("datasource", {})
    if ds_var and ds_var.get("current", {}).get("value") not in ds_uids:
        problems.append(f"{fn}: variable datasource defaults to {ds_var.get('current')}, "
                        f"not a provisioned uid {sorted(ds_uids)}")
    ids, rules = set(), []
    for p in dash.get("panels", []):
        if p["id"] in ids:
            problems.append(f"{fn}: panel id {p['id']} used twice")
        ids.add(p["id"])
        gp = p.get("gridPos", {})
        if gp.get("x", 0) + gp.get("w", 0) > 24:
            problems.append(f"{fn}: panel {p['title']!r} is wider than the grid")
        if p["type"] == "row":
            continue
        uid = p.get("datasource", {}).get("uid", "")
        if uid not in ds_uids and not (uid.startswith("$") and uid.strip("${}") in variables):
            problems.append(f"{fn}: panel {p['title']!r} uses an unknown data source {uid!r}")
        refs = [t.get("refId") for t in p.get("targets", [])]
        if not refs or len(refs) != len(set(refs)):
            problems.append(f"{fn}: panel {p['title']!r} has no targets or duplicate refIds")
        for t in p.get("targets", []):
            if not t.get("expr"):
                problems.append(f"{fn}: panel {p['title']!r} target {t.get('refId')} has no expr")
                continue
            expr = promql_of(t["expr"])
            if expr is None:
                problems.append(f"{fn}: panel {p['title']!r}: unsupported variable in {t['expr']!r}")
                continue
            rules.append({"record": f"dashboard:panel_{p['id']}_{t['refId']}", "expr": expr})
    return problems, rules


def check(gdir: Path, compose: dict) -> str:
    ds_uids, provider_paths = provisioning(gdir / "provisioning")
    dashboards = sorted(p.name for p in gdir.glob("*.json"))
    problems = mount_problems(dashboards, compose["services"]["grafana"], provider_paths)
    groups = []
    for fn in dashboards:
        found, rules = dashboard_problems(fn, json.loads((gdir / fn).read_text()), ds_uids)
        problems += found
        groups.append({"name": fn, "rules": rules})
    raise_if(problems)
    # promtool parses each panel query as a recording rule: PromQL syntax errors fail here.
    with tempfile.NamedTemporaryFile("w", suffix=".rules.yml") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
        f.flush()
        promtool("check", "rules", f.name)
    n = sum(len(g["rules"]) for g in groups)
    return f"{len(dashboards)} dashboard(s), {n} panel queries parse (promtool), provisioning and data sources consistent"

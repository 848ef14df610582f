"""Which environment variable names the deployment may set: docs/REFERENCE.md's table.

Owns reading the `## Variables` section of docs/REFERENCE.md (a Markdown table whose first
column holds each variable name in backticks) and the extras documented elsewhere. Never reads
a deployment file: kubernetes and compose pass the names they found.
"""

from __future__ import annotations

import re
from pathlib import Path

REFERENCE = Path("docs/REFERENCE.md")

# Read by the code but outside REFERENCE.md's variable table: graph-sim's own listen address
# (the Graph simulator of local runs and tests) and the name prefixes that isolate one
# deployment's exchanges, queues and Redis keys from another's.
EXTRA_VARS = frozenset({"WA_GRAPH_SIM_LISTEN", "WA_REDIS_PREFIX", "WA_AMQP_PREFIX"})

# Secrets: in Kubernetes they are mounted files (`<VAR>_FILE`), never plain variables.
SECRET_VARS = frozenset({"WA_APP_SECRET", "WA_VERIFY_TOKEN", "WA_SYSTEM_USER_TOKEN", "WA_TOKEN_KEY",
                         "WA_API_TOKENS"})

_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*$")
_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")


def table_variables(markdown: str) -> set[str]:
    """The backticked names in the first column of the tables under `## Variables` (up to the
    next heading of the same or a higher level)."""
    names: set[str] = set()
    level = None
    for line in markdown.splitlines():
        heading = _HEADING.match(line)
        if heading:
            depth = len(heading.group(1))
            if level is not None and depth <= level:
                break
            if level is None and depth == 2 and heading.group(2).strip() == "Variables":
                level = depth
            continue
        if level is None or not line.lstrip().startswith("|"):
            continue
        cells = line.strip().strip("|").split("|")
        names |= set(_NAME.findall(cells[0]))
    return names


def load_variables(root: Path) -> set[str] | None:
    """docs/REFERENCE.md's variables, or None while the file is not there."""
    path = root / REFERENCE
    if not path.exists():
        return None
    names = table_variables(path.read_text())
    if not names:
        raise ValueError(f"{REFERENCE}: no variable in a `## Variables` table")
    return names


def env_name_ok(name: str, known: set[str]) -> bool:
    """A documented variable, a documented extra, `<VAR>_FILE` of a documented variable, or
    one of OpenTelemetry's own `OTEL_*` variables."""
    if name in known or name in EXTRA_VARS:
        return True
    if name.endswith("_FILE") and name.removesuffix("_FILE") in known:
        return True
    return re.fullmatch(r"OTEL_[A-Z0-9_]+", name) is not None


def describe_extras() -> str:
    return ", ".join(sorted(EXTRA_VARS)) + ", <VAR>_FILE, OTEL_*"

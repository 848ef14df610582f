"""Running Prometheus' own `promtool`; the one place that starts it.

Never interprets a rules or dashboard file: callers hand it paths.
"""

from __future__ import annotations

import shutil
import subprocess

from deploycheck.report import Failed


def promtool(*args: str) -> str:
    """Runs `promtool ARGS`; its output, or Failed with that output."""
    if shutil.which("promtool") is None:
        raise Failed(["promtool is not installed (Debian: prometheus)"])
    out = subprocess.run(["promtool", *args], check=False, capture_output=True, text=True)
    text = "\n".join(line for line in (out.stdout + out.stderr).splitlines() if line.strip())
    if out.returncode != 0:
        raise Failed([f"promtool {' '.join(args)} failed:\n{text}"])
    return text

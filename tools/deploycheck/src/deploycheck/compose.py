"""docker-compose.yml: docker-compose's own validation, the file's structure, the variables.

Owns `compose-config`, `compose-structure` and `compose-env`. Never starts a container:
`docker-compose config -q` only parses and validates.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from deploycheck.reference import describe_extras, env_name_ok
from deploycheck.report import Failed, Skipped, raise_if

TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets"}
REQUIRED_SERVICES = ("otel-collector", "jaeger", "prometheus", "grafana")


def without_name(text: str) -> tuple[str | None, str]:
    """docker-compose 1.29 (Debian's) predates the top-level `name:` key: the project name and
    the file without that line, to be given as `-p NAME`."""
    m = re.search(r"^name:[ \t]*(\S+)[ \t]*$", text, re.MULTILINE)
    rest = re.sub(r"^name:.*\n?", "", text, flags=re.MULTILINE)
    return (m.group(1) if m else None), rest


def check_config(root: Path, compose_file: Path) -> str:
    if shutil.which("docker-compose") is None:
        raise Skipped("docker-compose not installable here: compose-structure checks the file")
    name, text = without_name(compose_file.read_text())
    name = name or "wa-onboard"
    with tempfile.TemporaryDirectory() as work:
        copy = Path(work) / "docker-compose.yml"
        copy.write_text(text)
        out = subprocess.run(["docker-compose", "--project-directory", str(root), "-p", name,
                              "-f", str(copy), "config", "-q"], check=False, capture_output=True, text=True)
    if out.returncode != 0:
        raise Failed([f"docker-compose config -q failed:\n{(out.stdout + out.stderr).strip()}"])
    version = subprocess.run(["docker-compose", "version", "--short"], check=False, capture_output=True, text=True).stdout.strip()
    return f"docker-compose {version} accepts docker-compose.yml (project {name})"


def wa_services(compose: dict) -> dict[str, dict]:
    """The services that run wa-onboard: built from the repository or its image."""
    return {n: s for n, s in compose["services"].items()
            if "build" in s or str(s.get("image", "")).startswith("wa-onboard")}


def env_names(service: dict) -> list[str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return [e.split("=", 1)[0] for e in env]
    return list(env)


def structure_problems(compose: dict[str, Any], root: Path) -> list[str]:
    """Known top-level keys, image or build, depends_on and named volumes resolve (a service
    depends only on services its profiles start), bind-mount sources exist, ports published on
    127.0.0.1 only, the observability services present."""
    problems = [f"unknown top-level key {key!r}" for key in compose
                if key not in TOP_LEVEL and not key.startswith("x-")]
    services = compose.get("services", {})
    volumes = set(compose.get("volumes") or {})
    for name, s in services.items():
        if "image" not in s and "build" not in s:
            problems.append(f"{name}: neither image nor build")
        deps = s.get("depends_on", {})
        for dep in (deps if isinstance(deps, (list, dict)) else []):
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
            elif not profiles_start(services[dep], s):
                problems.append(f"{name}: depends_on {dep}, which only the profiles "
                                f"{services[dep]['profiles']} start")
        for v in s.get("volumes", []):
            src = v.split(":", 1)[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")):
                if not (root / src).exists():
                    problems.append(f"{name}: bind-mount source {src} does not exist")
            elif src and src not in volumes:
                problems.append(f"{name}: volume {src} is not declared")
        for p in s.get("ports", []):
            if not isinstance(p, str) or not re.fullmatch(r"(127\.0\.0\.1:)?\d*:?\d+", p):
                problems.append(f"{name}: port {p!r} is not published on 127.0.0.1 as HOST:CONTAINER")
            elif not p.startswith("127.0.0.1:"):
                problems.append(f"{name}: port {p!r} is published on every interface")
    problems += [f"no {want} service" for want in REQUIRED_SERVICES if want not in services]
    return problems


def profiles_start(dep: dict, service: dict) -> bool:
    """Whether every time `service` starts, `dep` does: `dep` has no profile (always started),
    or `service`'s profiles are all among `dep`'s (`docker compose --profile P up`)."""
    dep_profiles = set(dep.get("profiles") or [])
    own = set(service.get("profiles") or [])
    return not dep_profiles or (bool(own) and own <= dep_profiles)


def check_structure(compose: dict, root: Path) -> str:
    raise_if(structure_problems(compose, root))
    services = compose["services"]
    return (f"{len(services)} services ({len(wa_services(compose))} run wa-onboard), depends_on, "
            "volumes and bind mounts resolve, ports on 127.0.0.1")


def env_problems(compose: dict, known: set[str]) -> tuple[list[str], int]:
    """Each variable of a wa-onboard service is documented; returns the problems and the count."""
    problems, count = [], 0
    for name, s in wa_services(compose).items():
        for var in env_names(s):
            count += 1
            if not env_name_ok(var, known):
                problems.append(f"{name}: {var} is neither in docs/REFERENCE.md's variables nor a "
                                f"documented extra ({describe_extras()})")
    return problems, count


def check_env(compose: dict, known: set[str] | None) -> str:
    if known is None:
        raise Skipped("docs/REFERENCE.md not there yet: variable names not checked")
    problems, count = env_problems(compose, known)
    raise_if(problems)
    return f"{count} variables of {len(wa_services(compose))} wa-onboard services are in docs/REFERENCE.md"

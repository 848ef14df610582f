#!/usr/bin/env bash
# Validates everything under deploy/ and docker-compose.yml without a cluster, a Docker engine
# or the network beyond the package registries: runs the tests of tools/deploycheck (pytest),
# then `python -m deploycheck`, which prints one line per check and exits non-zero if any
# check fails. Safe to run again: it installs only what is missing.
#
#   k8s-render         `kustomize build` of deploy/kubernetes/{base,overlays/production,
#                      overlays/staging}, with kustomize's own Go API (sigs.k8s.io/kustomize/api)
#   k8s-schema         every rendered object against the Kubernetes 1.31 OpenAPI schemas
#                      (kubernetes-validate, strict: unknown fields are errors); KEDA's
#                      ScaledObject/TriggerAuthentication against deploy/schemas/*.json
#   k8s-policy         non-root, read-only root fs, no privilege escalation, dropped
#                      capabilities, requests/limits, /healthz + /readyz probes, an autoscaler
#                      and a PodDisruptionBudget per Deployment, secrets only as mounted files
#                      (<VAR>_FILE), references between objects resolve, variable names as in
#                      docs/REFERENCE.md ("Variables")
#   prometheus-rules   promtool check rules deploy/prometheus/alerts.yml
#   prometheus-tests   promtool test rules deploy/prometheus/alerts.test.yml (on a copy of
#                      alerts.yml without annotations)
#   prometheus-config  promtool check config deploy/prometheus/prometheus.yml
#   alert-runbooks     every alert: severity, summary, runbook docs/OPERATIONS.md#<anchor>, and
#                      the anchor exists
#   grafana            dashboard structure, PromQL of every panel query (promtool), provisioning
#                      files, data source uids, dashboards mounted by docker-compose.yml
#   compose-config     docker-compose config -q (Debian's docker-compose 1.29)
#   compose-structure  services, depends_on, volumes, bind-mount sources, ports on 127.0.0.1
#   compose-env        the wa-onboard services' variables are docs/REFERENCE.md's ("Variables")
#                      or the extras listed in tools/deploycheck/src/deploycheck/reference.py
#
# Installs when missing: promtool (Debian's `prometheus`), docker-compose (Debian's
# `docker-compose`), and a virtualenv in tools/deploycheck/.venv with the package's
# dependencies from PyPI (tools/deploycheck/pyproject.toml), re-made when that file changes.
#
# The renderer: Debian has no kustomize, and neither crates.io nor npm has kustomize itself.
# PyPI's `pykustomize` bundles kustomize's Go API (sigs.k8s.io/kustomize/api v0.21.3, the API
# of the `kustomize` binary and of `kubectl kustomize`) as a shared library for Linux x86_64,
# so the trees are rendered by kustomize itself, with no renderer of our own to keep in step.
# Its wheel declares Requires-Python >= 3.14 although its Python part (cffi calls) runs on
# 3.11, which this machine has; so it alone is installed with --ignore-requires-python.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=tools/deploycheck
VENV=$PKG/.venv

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v promtool >/dev/null 2>&1 || { echo "check-deploy: installing promtool (Debian: prometheus)" >&2; apt_install prometheus; }
command -v promtool >/dev/null 2>&1 || { echo "check-deploy: promtool is not available" >&2; exit 1; }
# Without it, compose-config is skipped and compose-structure still checks the file.
command -v docker-compose >/dev/null 2>&1 || { echo "check-deploy: installing docker-compose (Debian)" >&2; apt_install docker-compose || true; }

# The virtualenv, keyed by the hash of pyproject.toml (new pins make a new one).
stamp=$(sha256sum "$PKG/pyproject.toml" | cut -d' ' -f1)
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "check-deploy: installing $PKG's dependencies into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv python3-pip && python3 -m venv "$VENV"; }
  pykustomize=$(grep -o '"pykustomize==[^"]*"' "$PKG/pyproject.toml" | tr -d '"')
  "$VENV/bin/pip" install -q --disable-pip-version-check --ignore-requires-python "$pykustomize" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check -e "$PKG[test]" >&2
  echo "$stamp" >"$VENV/.stamp"
fi

(cd "$PKG" && .venv/bin/python -m pytest -q -p no:cacheprovider)
exec "$VENV/bin/python" -m deploycheck .

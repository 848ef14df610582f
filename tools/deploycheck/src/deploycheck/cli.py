"""Runs every check against a repository checkout and prints one line per check.

Owns the list and order of the checks and the repository paths they read. Never judges a
file itself: the family modules do.
"""

from __future__ import annotations

import sys
from pathlib import Path

from deploycheck import compose, grafana, kubernetes, prometheus, reference
from deploycheck.report import Failed, load, raise_if, run

K8S_VERSION = "1.31"  # the Kubernetes minor the manifests are validated against


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else ".").resolve()
    k8s, prom = root / "deploy/kubernetes", root / "deploy/prometheus"
    compose_file = root / "docker-compose.yml"
    rendered: dict[str, list] = {}

    def k8s_render() -> str:
        for tree in kubernetes.TREES:
            rendered[tree] = kubernetes.render(k8s / tree)
        return (f"{len(rendered)} trees rendered ({' '.join(rendered)}) with kustomize "
                f"(sigs.k8s.io/kustomize/api, bundled by {kubernetes.kustomize_version()})")

    def trees() -> dict[str, list]:
        if len(rendered) != len(kubernetes.TREES):
            raise Failed(["k8s-render failed: nothing rendered to check"])
        return rendered

    def k8s_schema() -> str:
        crds = kubernetes.crd_validators(root / "deploy/schemas")
        problems, core, custom = [], 0, 0
        for tree, objs in trees().items():
            found, c, k = kubernetes.schema_problems(tree, objs, K8S_VERSION, crds)
            problems, core, custom = problems + found, core + c, custom + k
        raise_if(problems)
        return (f"{core} objects valid against Kubernetes {K8S_VERSION} (strict), "
                f"{custom} KEDA objects against deploy/schemas/")

    def k8s_policy() -> str:
        known = reference.load_variables(root)
        problems, checked = [], 0
        for tree, objs in trees().items():
            found, n = kubernetes.policy_problems(tree, objs, known)
            problems, checked = problems + found, checked + n
        raise_if(problems)
        names = "variable names in docs/REFERENCE.md" if known is not None else \
            "variable names not checked (no docs/REFERENCE.md yet)"
        return (f"{checked} Deployments: non-root, read-only, no escalation, resources, probes, "
                f"secrets as files, references resolve, {names}")

    checks = [
        ("k8s-render", k8s_render),
        ("k8s-schema", k8s_schema),
        ("k8s-policy", k8s_policy),
        ("prometheus-rules", lambda: prometheus.check_rules(prom / "alerts.yml")),
        ("prometheus-tests", lambda: prometheus.run_rule_tests(prom / "alerts.yml", prom / "alerts.test.yml")),
        ("prometheus-config", lambda: prometheus.check_config(prom / "prometheus.yml")),
        ("alert-runbooks", lambda: prometheus.check_runbooks(prom / "alerts.yml", root / "docs/OPERATIONS.md")),
        ("grafana", lambda: grafana.check(root / "deploy/grafana", load(compose_file))),
        ("compose-config", lambda: compose.check_config(root, compose_file)),
        ("compose-structure", lambda: compose.check_structure(load(compose_file), root)),
        ("compose-env", lambda: compose.check_env(load(compose_file), reference.load_variables(root))),
    ]
    failures = sum(not run(name, check, sys.stdout) for name, check in checks)
    if failures:
        print(f"check-deploy: {failures} check(s) failed")
        return 1
    print("check-deploy: all checks passed")
    return 0

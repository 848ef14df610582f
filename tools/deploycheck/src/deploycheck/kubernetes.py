"""deploy/kubernetes: rendering with kustomize, schemas, and the project's policy.

Owns `k8s-render`, `k8s-schema` and `k8s-policy`. Renders only with kustomize itself (its Go
API, bundled by the `pykustomize` wheel); never edits a manifest.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from deploycheck.reference import SECRET_VARS, env_name_ok

TREES = ("base", "overlays/production", "overlays/staging")
# KEDA's custom resources: deploy/schemas/<group>-<version>-<kind>.json (JSON Schema 2020-12).
_CRD_SCHEMA = re.compile(r"(.+)-(v[^-]+)-([a-z]+)\.json")

Obj = dict[str, Any]


def render(directory: Path) -> list[Obj]:
    """`kustomize build directory`, as objects."""
    import pykustomize

    result = asyncio.run(pykustomize.build_json(str(directory)))
    return list(result.resources)


def kustomize_version() -> str:
    import pykustomize

    return pykustomize.native_version()


# ----------------------------------------------------------------------------- schemas
def crd_validators(schema_dir: Path) -> dict[tuple[str, str], Any]:
    """(apiVersion, lower-case kind) -> validator, for each schema in deploy/schemas."""
    import jsonschema

    validators = {}
    for path in sorted(schema_dir.iterdir()):
        m = _CRD_SCHEMA.fullmatch(path.name)
        if m:
            schema = json.loads(path.read_text())
            jsonschema.Draft202012Validator.check_schema(schema)
            key = (f"{m.group(1)}/{m.group(2)}", m.group(3))
            validators[key] = jsonschema.Draft202012Validator(schema)
    return validators


def schema_problems(tree: str, objs: list[Obj], version: str, crds: dict) -> tuple[list[str], int, int]:
    """Each object against Kubernetes `version`'s OpenAPI schema (strict: unknown fields are
    errors), or, for a custom resource, against its schema in `crds`. Returns the problems and
    how many built-in and custom objects were checked."""
    import kubernetes_validate

    problems, core, custom = [], 0, 0
    for o in objs:
        what = f"{tree}: {o.get('kind')}/{o.get('metadata', {}).get('name')}"
        key = (o.get("apiVersion"), str(o.get("kind", "")).lower())
        if key in crds:
            errors = sorted(crds[key].iter_errors(o), key=lambda e: list(e.path))
            problems += [f"{what}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors]
            custom += 1
            continue
        try:
            kubernetes_validate.validate(o, version, strict=True)
            core += 1
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{what}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{what}: no schema ({e.message}); add one to deploy/schemas/")
    return problems, core, custom


# ------------------------------------------------------------------------------ policy
def _by_kind(objs: list[Obj]) -> dict[str, dict[str, Obj]]:
    out: dict[str, dict[str, Obj]] = {}
    for o in objs:
        out.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    return out


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def policy_problems(tree: str, objs: list[Obj], known_vars: set[str] | None) -> tuple[list[str], int]:
    """The project's rules for a rendered tree; returns the problems and the Deployments checked.
    `known_vars` None: variable names are not checked (docs/REFERENCE.md is not there)."""
    kinds = _by_kind(objs)
    deployments = kinds.get("Deployment", {})
    problems = []
    for name, d in deployments.items():
        problems += _deployment_problems(f"{tree}: Deployment/{name}", d, kinds, known_vars)
    problems += _scaler_problems(tree, kinds)
    for o in kinds.get("Service", {}).values():
        sel = o["spec"].get("selector", {})
        if not any(_selects(sel, d["spec"]["template"]["metadata"].get("labels", {})) for d in deployments.values()):
            problems.append(f"{tree}: Service/{o['metadata']['name']} selects no pods")
    return problems, len(deployments)


def _deployment_problems(where: str, d: Obj, kinds: dict, known_vars: set[str] | None) -> list[str]:
    problems = []
    name = d["metadata"]["name"]
    labels = d["spec"]["template"]["metadata"].get("labels", {})
    if not _selects(d["spec"]["selector"]["matchLabels"], labels):
        problems.append(f"{where}: selector does not match the pod labels")
    scaled = {o["spec"]["scaleTargetRef"]["name"] for k in ("ScaledObject", "HorizontalPodAutoscaler")
              for o in kinds.get(k, {}).values()}
    if name not in scaled:
        problems.append(f"{where}: scaled by neither an HPA nor a KEDA ScaledObject")
    if "replicas" in d["spec"]:
        problems.append(f"{where}: sets replicas although its autoscaler owns the count")
    if not any(_selects(p["spec"]["selector"]["matchLabels"], labels)
               for p in kinds.get("PodDisruptionBudget", {}).values()):
        problems.append(f"{where}: no PodDisruptionBudget selects its pods")
    pod = d["spec"]["template"]["spec"]
    if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken is not false")
    problems += _api_problems(where, d, kinds)
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod["containers"]:
        problems += _container_problems(f"{where} container {c['name']}", c, volumes,
                                        kinds.get("ConfigMap", {}), known_vars)
    return problems


def _api_problems(where: str, d: Obj, kinds: dict) -> list[str]:
    """A Deployment running `wa-onboard api` hands out business tokens: a NetworkPolicy must
    select its pods and admit ingress only from named peers (every rule has a `from`)."""
    template = d["spec"]["template"]
    if not any((c.get("args") or [None])[0] == "api" for c in template["spec"]["containers"]):
        return []
    labels = template["metadata"].get("labels", {})
    for policy in kinds.get("NetworkPolicy", {}).values():
        spec = policy["spec"]
        if (_selects(spec.get("podSelector", {}).get("matchLabels", {}), labels)
                and "Ingress" in spec.get("policyTypes", [])
                and all(rule.get("from") for rule in spec.get("ingress", []))):
            return []
    return [f"{where}: runs the internal API (business tokens) and no NetworkPolicy restricts who reaches it"]


def _container_problems(cw: str, c: Obj, volumes: dict, configmaps: dict,
                        known_vars: set[str] | None) -> list[str]:
    problems = []
    sc = c.get("securityContext", {})
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{cw}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{cw}: allowPrivilegeEscalation is not false")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problems.append(f"{cw}: capabilities are not dropped (drop: [ALL])")
    if sc.get("runAsNonRoot") is False or sc.get("runAsUser") == 0 or sc.get("privileged"):
        problems.append(f"{cw}: may run as root or privileged")
    res = c.get("resources", {})
    for kind, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
        problems += [f"{cw}: no resources.{kind}.{key}" for key in keys if key not in res.get(kind, {})]
    for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        got = c.get(probe, {}).get("httpGet", {}).get("path")
        if got != want:
            problems.append(f"{cw}: {probe} is {got!r}, not GET {want}")
    ports = {p.get("name") for p in c.get("ports", [])}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        port = c.get(probe, {}).get("httpGet", {}).get("port")
        if isinstance(port, str) and port not in ports:
            problems.append(f"{cw}: {probe} names port {port!r}, which the container does not declare")
    names, env_problems = _env(cw, c, volumes, configmaps)
    problems += env_problems
    if known_vars is not None:
        bad = sorted(n for n in set(names) if not env_name_ok(n, known_vars))
        if bad:
            problems.append(f"{cw}: variables not in docs/REFERENCE.md or the documented extras: {bad}")
    if "WA_SYSTEM_USER_ID" in names and "WA_SYSTEM_USER_TOKEN_FILE" not in names:
        problems.append(f"{cw}: a worker without WA_SYSTEM_USER_TOKEN_FILE")
    return problems


def _env(cw: str, c: Obj, volumes: dict, configmaps: dict) -> tuple[list[str], list[str]]:
    """The variable names a container gets (env and envFrom ConfigMaps), and the problems of
    how it gets them: secrets only as files of a read-only mounted Secret, references resolve."""
    names, problems = [], []
    mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts", [])}
    for ref in c.get("envFrom", []):
        cm = ref.get("configMapRef", {}).get("name")
        if cm is None:
            problems.append(f"{cw}: envFrom other than a ConfigMap")
        elif cm not in configmaps:
            problems.append(f"{cw}: ConfigMap {cm} is not in the rendered tree")
        else:
            names += list(configmaps[cm].get("data", {}))
    for e in c.get("env", []):
        names.append(e["name"])
        if e["name"] in SECRET_VARS:
            problems.append(f"{cw}: secret {e['name']} as a variable; mount it and use {e['name']}_FILE")
        if e["name"].endswith("_FILE"):
            value = e.get("value", "")
            directory, _, item = value.rpartition("/")
            m = mounts.get(directory)
            vol = volumes.get(m["name"]) if m else None
            items = [i["path"] for i in (vol or {}).get("secret", {}).get("items", [])]
            if not m or not vol or "secret" not in vol or item not in items:
                problems.append(f"{cw}: {e['name']}={value} is not a file of a mounted Secret")
            elif not m.get("readOnly"):
                problems.append(f"{cw}: secret volume {m['name']} is not mounted readOnly")
        cm_ref = e.get("valueFrom", {}).get("configMapKeyRef")
        if cm_ref and cm_ref["name"] not in configmaps:
            problems.append(f"{cw}: ConfigMap {cm_ref['name']} is not in the rendered tree")
    return names, problems


def _scaler_problems(tree: str, kinds: dict) -> list[str]:
    problems = []
    deployments = kinds.get("Deployment", {})
    for o in kinds.get("ScaledObject", {}).values():
        so = f"{tree}: ScaledObject/{o['metadata']['name']}"
        target = o["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            problems.append(f"{so} targets missing Deployment {target}")
        for t in o["spec"]["triggers"]:
            if t["type"] == "rabbitmq" and t["metadata"].get("queueName") != "wa.account_update":
                problems.append(f"{so}: rabbitmq trigger is not on wa.account_update")
            ref = t.get("authenticationRef", {}).get("name")
            if ref and ref not in kinds.get("TriggerAuthentication", {}):
                problems.append(f"{so}: TriggerAuthentication {ref} missing")
        if o["spec"].get("minReplicaCount", 0) < 1:
            problems.append(f"{so}: minReplicaCount below 1 leaves the queue without consumers")
    for o in kinds.get("HorizontalPodAutoscaler", {}).values():
        if o["spec"]["scaleTargetRef"]["name"] not in deployments:
            problems.append(f"{tree}: HorizontalPodAutoscaler/{o['metadata']['name']} targets a missing Deployment")
    return problems

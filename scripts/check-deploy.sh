#!/usr/bin/env bash
# Validates everything under deploy/ and docker-compose.yml without a cluster, a Docker engine
# or the network beyond the package registries. One line per check; exits non-zero if any
# check fails. Safe to run again: it installs only what is missing.
#
#   k8s-render          renders deploy/kubernetes/{base,overlays/*} (kustomize, `kubectl
#                       kustomize`, or the small Python renderer below when neither exists)
#   k8s-render-fallback the Python renderer gives the same objects as kustomize (so a machine
#                       without kustomize checks the same manifests); skipped without kustomize
#   k8s-schema          every rendered object against the Kubernetes $K8S_VERSION OpenAPI
#                       schemas (kubernetes-validate, strict: unknown fields are errors); KEDA's
#                       ScaledObject/TriggerAuthentication against deploy/schemas/*.json
#   k8s-policy          non-root, read-only root fs, no privilege escalation, dropped
#                       capabilities, requests/limits, /healthz + /readyz probes, secrets only
#                       as mounted files (<VAR>_FILE), references between objects resolve,
#                       environment names as in SPEC.md
#   prometheus-rules    promtool check rules deploy/prometheus/alerts.yml
#   prometheus-tests    promtool test rules deploy/prometheus/alerts.test.yml
#   prometheus-config   promtool check config deploy/prometheus/prometheus.yml
#   alert-runbooks      every alert: severity, summary, runbook docs/OPERATIONS.md#<anchor>
#                       (anchors checked in docs/OPERATIONS.md once it exists)
#   grafana             dashboard structure, PromQL syntax of every panel query (promtool),
#                       provisioning files and data source uids
#   compose-config      docker-compose config -q (Debian's docker-compose 1.29)
#   compose-structure   services, depends_on, volumes and bind-mount sources (Python)
#   compose-env         the wa-onboard services' variables are SPEC.md's names or documented
#                       extras (checked against ../shared/SPEC.md when it is there)
#
# Installs when missing: kubernetes-validate (PyPI, ships the schemas offline), promtool
# (Debian's `prometheus`), docker-compose (Debian's `docker-compose`). Debian has no current
# kustomize; `kubectl kustomize` is used where kubectl is installed.
#
# CHECK_DEPLOY_RENDERER=python renders with the Python renderer alone (as on a machine with
# neither kustomize nor kubectl); SPEC_MD=path points compose-env at another SPEC.md.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

K8S_VERSION=1.31                # Kubernetes minor the manifests are validated against
KUBERNETES_VALIDATE=1.37.0      # ships schemas for 1.25 .. 1.37
SPEC_MD=${SPEC_MD:-$ROOT/../shared/SPEC.md}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0

# ---------------------------------------------------------------------------------- output
# run_check NAME CMD...: runs CMD with its output in a log; prints `ok NAME: <last line>` or
# `FAIL NAME: <last line>` followed by the log.
run_check() {
  local name=$1; shift
  local log="$WORK/$name.log"
  if "$@" >"$log" 2>&1; then
    printf 'ok    %-20s %s\n' "$name" "$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
  else
    failures=$((failures + 1))
    printf 'FAIL  %-20s %s\n' "$name" "$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
    sed 's/^/      | /' "$log"
  fi
}
skip() { printf 'skip  %-20s %s\n' "$1" "$2"; }

# --------------------------------------------------------------------------------- install
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

PY=python3
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/wa-onboard/check-deploy-venv
have_validator() { "$1" -c 'import kubernetes_validate, jsonschema, yaml' >/dev/null 2>&1; }
install_validator() {
  if have_validator python3; then PY=python3; return 0; fi
  if [ -x "$VENV/bin/python" ] && have_validator "$VENV/bin/python"; then PY=$VENV/bin/python; return 0; fi
  echo "check-deploy: installing kubernetes-validate $KUBERNETES_VALIDATE" >&2
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip >&2
  # A pip that may install here (pyenv, a venv): use it. A Debian system Python refuses
  # (PEP 668): use a venv of our own.
  if python3 -m pip install -q "kubernetes-validate==$KUBERNETES_VALIDATE" >&2 2>/dev/null \
    && have_validator python3; then
    PY=python3; return 0
  fi
  python3 -m venv "$VENV" >/dev/null 2>&1 || { apt_install python3-venv >&2 && python3 -m venv "$VENV"; } || return 1
  "$VENV/bin/python" -m pip install -q "kubernetes-validate==$KUBERNETES_VALIDATE" >&2 || return 1
  PY=$VENV/bin/python
}
install_validator || { echo "check-deploy: cannot install kubernetes-validate" >&2; exit 1; }
command -v promtool >/dev/null 2>&1 || { echo "check-deploy: installing promtool (Debian: prometheus)" >&2; apt_install prometheus; }
command -v promtool >/dev/null 2>&1 || { echo "check-deploy: promtool is not available" >&2; exit 1; }
# Without it, compose-structure still checks the file; docker-compose adds the schema check.
command -v docker-compose >/dev/null 2>&1 || { echo "check-deploy: installing docker-compose (Debian)" >&2; apt_install docker-compose || true; }

# ------------------------------------------------------------------- the Python side
cat >"$WORK/check.py" <<'PY'
"""Helpers of scripts/check-deploy.sh: `python3 check.py COMMAND ARGS` (see the shell part)."""
import copy
import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.environ["ROOT"]
WORK = os.environ["WORK"]

# SPEC.md "Interface": every variable of its table (SPEC.md is not in this repository; when
# ../shared/SPEC.md is there, compose-env checks this list against it).
SPEC_VARS = {
    "WA_APP_SECRET", "WA_VERIFY_TOKEN", "WA_LISTEN", "WA_METRICS_LISTEN", "WA_MAX_BODY_BYTES",
    "AMQP_URL", "REDIS_URL", "WA_GRAPH_BASE", "WA_GRAPH_VERSION", "WA_SYSTEM_USER_ID",
    "WA_SYSTEM_USER_TOKEN", "WA_TOKEN_KEY", "WA_PARTNER_BUSINESS_IDS", "WA_SUBSCRIBE_APP",
    "WA_RETRY_DELAYS", "WA_DEDUPE_TTL", "WA_SIGNUP_API_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "RUST_LOG",
}
# Documented beyond SPEC.md's table: the simulator's address and the name prefixes.
EXTRA_VARS = {"WA_GRAPH_SIM_LISTEN", "WA_REDIS_PREFIX", "WA_AMQP_PREFIX"}
# Secrets are read from files in Kubernetes; never as plain variables there.
SECRET_VARS = {"WA_APP_SECRET", "WA_VERIFY_TOKEN", "WA_SYSTEM_USER_TOKEN", "WA_TOKEN_KEY"}


def env_name_ok(name):
    if name in SPEC_VARS or name in EXTRA_VARS:
        return True
    if name.endswith("_FILE") and name[: -len("_FILE")] in SPEC_VARS:
        return True
    return re.fullmatch(r"OTEL_[A-Z0-9_]+", name) is not None


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def fail(problems):
    """Prints each problem, then a count as the summary line, and exits 1."""
    print("\n".join(problems))
    print(f"{len(problems)} problem(s)")
    sys.exit(1)


# ------------------------------------------------------------------------ kustomize subset
# A renderer for the kustomize features deploy/kubernetes uses (resources, namespace,
# labels, images, patches by file), for machines without kustomize. k8s-render-fallback
# compares it with kustomize wherever kustomize exists, so it cannot drift unnoticed.
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PriorityClass", "StorageClass", "PersistentVolume"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Strategic-merge keys of the lists the manifests patch (Kubernetes' patchMergeKey).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}


def smp(base, patch, builtin, key=None):
    """Strategic merge patch for built-in kinds, JSON merge patch for custom resources."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = smp(out[k], v, builtin, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if builtin and isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        mk = MERGE_KEYS[key]
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            for i, existing in enumerate(out):
                if existing.get(mk) == item.get(mk):
                    out[i] = smp(existing, item, builtin)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def render(directory):
    kfile = os.path.join(directory, "kustomization.yaml")
    with open(kfile) as f:
        k = yaml.safe_load(f)
    unknown = set(k) - SUPPORTED
    if unknown:
        raise SystemExit(f"{kfile}: the Python renderer does not support {sorted(unknown)}")
    objs = []
    for res in k.get("resources", []):
        path = os.path.normpath(os.path.join(directory, res))
        objs += render(path) if os.path.isdir(path) else load_all(path)
    for p in k.get("patches", []):
        if set(p) - {"path"}:
            raise SystemExit(f"{kfile}: only `patches: - path:` is supported, not {p}")
        for doc in load_all(os.path.join(directory, p["path"])):
            hits = [i for i, o in enumerate(objs)
                    if o["kind"] == doc["kind"] and o["metadata"]["name"] == doc["metadata"]["name"]]
            if len(hits) != 1:
                raise SystemExit(f"{p['path']}: {doc['kind']}/{doc['metadata']['name']} matches {len(hits)} objects")
            builtin = "." not in doc["apiVersion"].split("/")[0] or doc["apiVersion"].split("/")[0].endswith(".k8s.io")
            objs[hits[0]] = smp(objs[hits[0]], doc, builtin)
    if "namespace" in k:
        for o in objs:
            if o["kind"] not in CLUSTER_SCOPED:
                o["metadata"]["namespace"] = k["namespace"]
    for lab in k.get("labels", []):
        if lab.get("includeSelectors"):
            raise SystemExit(f"{kfile}: labels.includeSelectors is not supported")
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(lab["pairs"])
            if lab.get("includeTemplates") and o["kind"] in WORKLOADS:
                o["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
    for img in k.get("images", []):
        for o in objs:
            if o["kind"] not in WORKLOADS:
                continue
            pod = o["spec"]["template"]["spec"]
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                name = re.split(r"[:@]", c["image"], maxsplit=1)[0]
                if name == img["name"]:
                    tag = img.get("newTag") or (c["image"].split(":", 1)[1] if ":" in c["image"] else None)
                    c["image"] = img.get("newName", name) + (f":{tag}" if tag else "")
    return objs


def cmd_render_py(directory, out):
    objs = render(directory)
    with open(out, "w") as f:
        yaml.safe_dump_all(objs, f, sort_keys=True)
    print(f"{len(objs)} objects")


def keyed(objs):
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs}


def cmd_compare(*pairs):
    total = 0
    for pair in pairs:
        ref, mine = pair.split("=")
        a, b = keyed(load_all(ref)), keyed(load_all(mine))
        if a.keys() != b.keys():
            fail([f"{os.path.basename(ref)}: objects differ: kustomize only {sorted(a.keys() - b.keys())}, "
                  f"python only {sorted(b.keys() - a.keys())}"])
        for key in a:
            if a[key] != b[key]:
                fail([f"{os.path.basename(ref)}: {key} differs between kustomize and the Python renderer:\n"
                      + yaml.safe_dump(a[key]) + "---\n" + yaml.safe_dump(b[key])])
        total += len(a)
    print(f"the Python renderer gives the same {total} objects as kustomize")


# ----------------------------------------------------------------------------- k8s schema
def cmd_k8s_schema(version, *renders):
    import jsonschema
    import kubernetes_validate

    crd_schemas = {}
    schema_dir = os.path.join(ROOT, "deploy/schemas")
    for fn in sorted(os.listdir(schema_dir)):
        m = re.fullmatch(r"(.+)-(v[^-]+)-([a-z]+)\.json", fn)
        if m:
            with open(os.path.join(schema_dir, fn)) as f:
                schema = json.load(f)
            jsonschema.Draft202012Validator.check_schema(schema)
            crd_schemas[(f"{m.group(1)}/{m.group(2)}", m.group(3))] = jsonschema.Draft202012Validator(schema)
    errors, core, crds = [], 0, 0
    for path in renders:
        for o in load_all(path):
            what = f"{os.path.basename(path)}: {o.get('kind')}/{o.get('metadata', {}).get('name')}"
            key = (o.get("apiVersion"), str(o.get("kind", "")).lower())
            if key in crd_schemas:
                errs = sorted(crd_schemas[key].iter_errors(o), key=lambda e: list(e.path))
                errors += [f"{what}: {'.'.join(map(str, e.path))}: {e.message}" for e in errs]
                crds += 1
                continue
            try:
                kubernetes_validate.validate(o, version, strict=True)
                core += 1
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{what}: {'.'.join(map(str, e.path))}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                errors.append(f"{what}: no schema ({e.message}); add one to deploy/schemas/")
    if errors:
        fail(list(dict.fromkeys(errors)))
    print(f"{core} objects valid against Kubernetes {version} (strict), {crds} KEDA objects against deploy/schemas/")


# ----------------------------------------------------------------------------- k8s policy
def cmd_k8s_policy(*renders):
    problems, checked = [], 0
    for path in renders:
        tree = os.path.basename(path)
        objs = load_all(path)
        by_kind = {}
        for o in objs:
            by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
        deployments = by_kind.get("Deployment", {})
        configmaps = by_kind.get("ConfigMap", {})
        scaled = {o["spec"]["scaleTargetRef"]["name"] for o in by_kind.get("ScaledObject", {}).values()}
        hpa = {o["spec"]["scaleTargetRef"]["name"] for o in by_kind.get("HorizontalPodAutoscaler", {}).values()}
        for name, d in deployments.items():
            checked += 1
            where = f"{tree}: Deployment/{name}"
            labels = d["spec"]["template"]["metadata"].get("labels", {})
            sel = d["spec"]["selector"]["matchLabels"]
            if any(labels.get(k) != v for k, v in sel.items()):
                problems.append(f"{where}: selector does not match the pod labels")
            if name not in scaled | hpa:
                problems.append(f"{where}: scaled by neither an HPA nor a KEDA ScaledObject")
            if "replicas" in d["spec"]:
                problems.append(f"{where}: sets replicas although its autoscaler owns the count")
            if not any(all(labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items())
                       for p in by_kind.get("PodDisruptionBudget", {}).values()):
                problems.append(f"{where}: no PodDisruptionBudget selects its pods")
            pod = d["spec"]["template"]["spec"]
            psc = pod.get("securityContext", {})
            if psc.get("runAsNonRoot") is not True:
                problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
            if pod.get("automountServiceAccountToken") is not False:
                problems.append(f"{where}: automountServiceAccountToken is not false")
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for c in pod["containers"]:
                cw = f"{where} container {c['name']}"
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
                    for key in keys:
                        if key not in res.get(kind, {}):
                            problems.append(f"{cw}: no resources.{kind}.{key}")
                for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                    got = c.get(probe, {}).get("httpGet", {}).get("path")
                    if got != want:
                        problems.append(f"{cw}: {probe} is {got!r}, not GET {want}")
                ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    port = c.get(probe, {}).get("httpGet", {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        problems.append(f"{cw}: {probe} names port {port!r}, which the container does not declare")
                mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts", [])}
                names = []
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
                bad = sorted(n for n in set(names) if not env_name_ok(n))
                if bad:
                    problems.append(f"{cw}: variables not in SPEC.md or the documented extras: {bad}")
                if "WA_SYSTEM_USER_ID" in names and "WA_SYSTEM_USER_TOKEN_FILE" not in names:
                    problems.append(f"{cw}: a worker without WA_SYSTEM_USER_TOKEN_FILE")
        for o in by_kind.get("ScaledObject", {}).values():
            target = o["spec"]["scaleTargetRef"]["name"]
            if target not in deployments:
                problems.append(f"{tree}: ScaledObject/{o['metadata']['name']} targets missing Deployment {target}")
            for t in o["spec"]["triggers"]:
                if t["type"] == "rabbitmq" and t["metadata"].get("queueName") != "wa.account_update":
                    problems.append(f"{tree}: ScaledObject/{o['metadata']['name']}: rabbitmq trigger is not on wa.account_update")
                ref = t.get("authenticationRef", {}).get("name")
                if ref and ref not in by_kind.get("TriggerAuthentication", {}):
                    problems.append(f"{tree}: ScaledObject/{o['metadata']['name']}: TriggerAuthentication {ref} missing")
            if o["spec"].get("minReplicaCount", 0) < 1:
                problems.append(f"{tree}: ScaledObject/{o['metadata']['name']}: minReplicaCount below 1 leaves the queue without consumers")
        for o in by_kind.get("HorizontalPodAutoscaler", {}).values():
            if o["spec"]["scaleTargetRef"]["name"] not in deployments:
                problems.append(f"{tree}: HorizontalPodAutoscaler/{o['metadata']['name']} targets a missing Deployment")
        for o in by_kind.get("Service", {}).values():
            sel = o["spec"].get("selector", {})
            if not any(all(d["spec"]["template"]["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())
                       for d in deployments.values()):
                problems.append(f"{tree}: Service/{o['metadata']['name']} selects no pods")
    if problems:
        fail(problems)
    print(f"{checked} Deployments: non-root, read-only, no escalation, resources, probes, secrets as files, references resolve")


# ----------------------------------------------------------------------------- prometheus
def anchor(alert):
    """WaOnboardIngress5xxRatio -> wa-onboard-ingress-5xx-ratio"""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])", "-", alert).lower()


def github_slugs(markdown):
    slugs = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"\{#([^}]+)\}\s*$", "", m.group(1)).strip()
            slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
            slugs.add(slug)
    slugs |= set(re.findall(r"""(?:id|name)=["']([^"']+)["']""", markdown))
    slugs |= set(re.findall(r"\{#([^}\s]+)\}", markdown))
    return slugs


def cmd_strip_annotations(src, dst):
    with open(src) as f:
        rules = yaml.safe_load(f)
    for g in rules["groups"]:
        for r in g["rules"]:
            r.pop("annotations", None)
    with open(dst, "w") as f:
        yaml.safe_dump(rules, f, sort_keys=False)
    print(dst)


def cmd_alert_runbooks(rules_path, operations_md):
    with open(rules_path) as f:
        rules = yaml.safe_load(f)
    problems, anchors = [], []
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            name = r["alert"]
            want = f"docs/OPERATIONS.md#{anchor(name)}"
            ann = r.get("annotations", {})
            if ann.get("runbook") != want:
                problems.append(f"{name}: runbook annotation is {ann.get('runbook')!r}, want {want!r}")
            if not ann.get("summary"):
                problems.append(f"{name}: no summary annotation")
            if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                problems.append(f"{name}: severity label is not critical, warning or info")
            if anchor(name) not in anchors:
                anchors.append(anchor(name))
    note = "docs/OPERATIONS.md not there yet: anchors not resolved"
    if os.path.exists(operations_md):
        with open(operations_md) as f:
            slugs = github_slugs(f.read())
        missing = [a for a in anchors if a not in slugs]
        problems += [f"docs/OPERATIONS.md has no anchor #{a}" for a in missing]
        note = "anchors resolve in docs/OPERATIONS.md"
    if problems:
        fail(problems)
    print(f"{len(anchors)} alerts with severity, summary and runbook ({note}): " + " ".join(anchors))


# -------------------------------------------------------------------------------- grafana
def exprs_of(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                out.append(v)
            else:
                exprs_of(v, out)
    elif isinstance(node, list):
        for v in node:
            exprs_of(v, out)
    return out


def cmd_grafana(compose_file):
    problems = []
    gdir = os.path.join(ROOT, "deploy/grafana")
    prov = os.path.join(gdir, "provisioning")
    ds_uids = set()
    for fn in sorted(os.listdir(os.path.join(prov, "datasources"))):
        for doc in load_all(os.path.join(prov, "datasources", fn)):
            ds_uids |= {d["uid"] for d in doc.get("datasources", [])}
    provider_paths = set()
    for fn in sorted(os.listdir(os.path.join(prov, "dashboards"))):
        for doc in load_all(os.path.join(prov, "dashboards", fn)):
            provider_paths |= {p["options"]["path"] for p in doc.get("providers", [])}
    with open(compose_file) as f:
        compose = yaml.safe_load(f)
    mounts = compose["services"]["grafana"].get("volumes", [])
    dashboards = sorted(fn for fn in os.listdir(gdir) if fn.endswith(".json"))
    for fn in dashboards:
        if not any(m.startswith(f"./deploy/grafana/{fn}:") and m.split(":")[1].rsplit("/", 1)[0] in provider_paths for m in mounts):
            problems.append(f"{fn}: not mounted by docker-compose.yml into a provisioned dashboard folder {sorted(provider_paths)}")
    rules = {"groups": []}
    n_exprs = 0
    for fn in dashboards:
        with open(os.path.join(gdir, fn)) as f:
            dash = json.load(f)
        for key in ("uid", "title", "panels", "schemaVersion"):
            if key not in dash:
                problems.append(f"{fn}: no {key}")
        variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
        ds_var = variables.get("datasource", {})
        if ds_var and ds_var.get("current", {}).get("value") not in ds_uids:
            problems.append(f"{fn}: variable datasource defaults to {ds_var.get('current')}, not a provisioned uid {sorted(ds_uids)}")
        ids, group = set(), {"name": fn, "rules": []}
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
                expr = (t["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
                        .replace("$__range", "1h"))
                if "$" in expr:
                    problems.append(f"{fn}: panel {p['title']!r}: unsupported variable in {t['expr']!r}")
                    continue
                group["rules"].append({"record": f"dashboard:panel_{p['id']}_{t['refId']}", "expr": expr})
                n_exprs += 1
        rules["groups"].append(group)
    # promtool parses each panel query as a recording rule: PromQL syntax errors fail here.
    rules_file = os.path.join(WORK, "dashboard-queries.rules.yml")
    with open(rules_file, "w") as f:
        yaml.safe_dump(rules, f, sort_keys=False)
    out = subprocess.run(["promtool", "check", "rules", rules_file], capture_output=True, text=True)
    if out.returncode != 0:
        problems.append("promtool rejects a panel query:\n" + out.stdout + out.stderr)
    if problems:
        fail(problems)
    print(f"{len(dashboards)} dashboard(s), {n_exprs} panel queries parse (promtool), provisioning and data sources consistent")


# -------------------------------------------------------------------------------- compose
def wa_services(compose):
    return {n: s for n, s in compose["services"].items()
            if "build" in s or str(s.get("image", "")).startswith("wa-onboard")}


def env_names(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        return [e.split("=", 1)[0] for e in env]
    return list(env)


def cmd_compose_structure(compose_file):
    with open(compose_file) as f:
        compose = yaml.safe_load(f)
    problems = []
    allowed_top = {"name", "services", "volumes", "networks", "configs", "secrets"}
    for key in compose:
        if key not in allowed_top and not key.startswith("x-"):
            problems.append(f"unknown top-level key {key!r}")
    services = compose.get("services", {})
    volumes = set(compose.get("volumes") or {})
    for name, s in services.items():
        if "image" not in s and "build" not in s:
            problems.append(f"{name}: neither image nor build")
        deps = s.get("depends_on", {})
        for dep in (deps if isinstance(deps, (list, dict)) else []):
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep}")
        for v in s.get("volumes", []):
            src = v.split(":", 1)[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith((".", "/")):
                if not os.path.exists(os.path.join(ROOT, src)):
                    problems.append(f"{name}: bind-mount source {src} does not exist")
            elif src and src not in volumes:
                problems.append(f"{name}: volume {src} is not declared")
        for p in s.get("ports", []):
            if not isinstance(p, str) or not re.fullmatch(r"(127\.0\.0\.1:)?\d*:?\d+", p):
                problems.append(f"{name}: port {p!r} is not published on 127.0.0.1 as HOST:CONTAINER")
            elif not p.startswith("127.0.0.1:"):
                problems.append(f"{name}: port {p!r} is published on every interface")
    for want in ("otel-collector", "jaeger", "prometheus", "grafana"):
        if want not in services:
            problems.append(f"no {want} service")
    if problems:
        fail(problems)
    print(f"{len(services)} services ({len(wa_services(compose))} run wa-onboard), depends_on, volumes and bind mounts resolve, ports on 127.0.0.1")


def spec_table_vars(spec_md):
    with open(spec_md) as f:
        lines = f.read().splitlines()
    names, inside = set(), False
    for line in lines:
        if re.match(r"\|\s*variable\s*\|", line):
            inside = True
            continue
        if inside:
            if not line.startswith("|"):
                break
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first))
    return names


def cmd_compose_env(compose_file, spec_md):
    with open(compose_file) as f:
        compose = yaml.safe_load(f)
    problems, note = [], f"{spec_md} not found: checked against the script's copy of SPEC.md's table"
    if os.path.exists(spec_md):
        spec = spec_table_vars(spec_md)
        if spec != SPEC_VARS:
            problems.append(f"SPEC.md's variable table and SPEC_VARS in scripts/check-deploy.sh differ: "
                            f"SPEC.md only {sorted(spec - SPEC_VARS)}, script only {sorted(SPEC_VARS - spec)}")
        note = "the script's list matches SPEC.md's table"
    services = wa_services(compose)
    count = 0
    for name, s in services.items():
        for var in env_names(s):
            count += 1
            if not env_name_ok(var):
                problems.append(f"{name}: {var} is neither in SPEC.md nor a documented extra "
                                f"({', '.join(sorted(EXTRA_VARS))}, <VAR>_FILE, OTEL_*)")
    if problems:
        fail(problems)
    print(f"{count} variables of {len(services)} wa-onboard services are SPEC.md names ({note})")


if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
export ROOT WORK
chk() { "$PY" "$WORK/check.py" "$@"; }

# ------------------------------------------------------------------------------ kubernetes
K=deploy/kubernetes
trees=(base overlays/production overlays/staging)
renderer=""
if [ "${CHECK_DEPLOY_RENDERER:-}" = python ]; then
  : # forced: the Python renderer alone
elif command -v kustomize >/dev/null 2>&1; then
  renderer="kustomize build"
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize "$K/base" >/dev/null 2>&1; then
  renderer="kubectl kustomize"
fi
render_all() {
  local t out
  for t in "${trees[@]}"; do
    out="$WORK/render-${t//\//-}.yaml"
    if [ -n "$renderer" ]; then
      $renderer "$K/$t" >"$out" || { echo "$renderer $K/$t failed"; return 1; }
    else
      chk render-py "$K/$t" "$out" >/dev/null || { echo "rendering $K/$t failed"; return 1; }
    fi
  done
  echo "${#trees[@]} trees rendered (${trees[*]}) with ${renderer:-the Python renderer (no kustomize here)}"
}
renders=()
for t in "${trees[@]}"; do renders+=("$WORK/render-${t//\//-}.yaml"); done

run_check k8s-render render_all
if [ -n "$renderer" ]; then
  fallback_same() {
    local t pairs=()
    for t in "${trees[@]}"; do
      chk render-py "$K/$t" "$WORK/py-${t//\//-}.yaml" >/dev/null || return 1
      pairs+=("$WORK/render-${t//\//-}.yaml=$WORK/py-${t//\//-}.yaml")
    done
    chk compare "${pairs[@]}"
  }
  run_check k8s-render-fallback fallback_same
else
  skip k8s-render-fallback "no kustomize here: the Python renderer was used"
fi
run_check k8s-schema chk k8s-schema "$K8S_VERSION" "${renders[@]}"
run_check k8s-policy chk k8s-policy "${renders[@]}"

# ------------------------------------------------------------------------------ prometheus
P=deploy/prometheus
rules_check() { promtool check rules "$P/alerts.yml" && echo "alerts.yml: $(grep -c '^      - alert:' "$P/alerts.yml") alerting rules are valid"; }
run_check prometheus-rules rules_check
rule_tests() {
  # The tests hold expressions, `for` and labels; annotations are checked by alert-runbooks.
  mkdir -p "$WORK/rules" && chk strip-annotations "$P/alerts.yml" "$WORK/rules/alerts.yml" >/dev/null \
    && cp "$P/alerts.test.yml" "$WORK/rules/" && promtool test rules "$WORK/rules/alerts.test.yml" \
    && echo "$(grep -c '^  - name:' "$P/alerts.test.yml") alert test cases pass"
}
run_check prometheus-tests rule_tests
config_check() { promtool check config "$P/prometheus.yml" && echo "prometheus.yml and its rule files are valid"; }
run_check prometheus-config config_check
run_check alert-runbooks chk alert-runbooks "$P/alerts.yml" docs/OPERATIONS.md
run_check grafana chk grafana docker-compose.yml

# --------------------------------------------------------------------------------- compose
if command -v docker-compose >/dev/null 2>&1; then
  compose_config() {
    # docker-compose 1.29 predates the top-level `name:` key; give it as -p instead.
    local name
    name=$(sed -n 's/^name:[[:space:]]*//p' docker-compose.yml)
    sed '/^name:/d' docker-compose.yml >"$WORK/docker-compose.yml"
    docker-compose --project-directory "$ROOT" -p "${name:-wa-onboard}" -f "$WORK/docker-compose.yml" config -q \
      && echo "docker-compose $(docker-compose version --short 2>/dev/null) accepts docker-compose.yml (project ${name:-wa-onboard})"
  }
  run_check compose-config compose_config
else
  skip compose-config "docker-compose not installable here: compose-structure checks the file"
fi
run_check compose-structure chk compose-structure docker-compose.yml
run_check compose-env chk compose-env docker-compose.yml "$SPEC_MD"

if ((failures)); then
  echo "check-deploy: $failures check(s) failed"
  exit 1
fi
echo "check-deploy: all checks passed"

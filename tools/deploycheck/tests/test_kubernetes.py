"""kubernetes: rendering with kustomize, schema and policy checks on small trees."""

import copy

import jsonschema
import pytest
from pykustomize import KustomizeError

from deploycheck import kubernetes
from deploycheck.report import load_all


def by_name(objs, kind, name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def test_kustomize_renders_an_overlay_with_namespace_labels_images_and_patches(fixtures):
    objs = kubernetes.render(fixtures / "kustomize/overlay")
    d = by_name(objs, "Deployment", "demo")
    assert d["metadata"]["namespace"] == "prod"
    assert d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "demo"
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "demo:1.0"
    # A strategic merge patch: the env list is merged by name, not replaced.
    assert c["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]


def test_a_broken_kustomization_is_an_error(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(KustomizeError, match="missing.yaml"):
        kubernetes.render(tmp_path)


def test_schemas_are_strict_and_custom_resources_use_deploy_schemas(fixtures):
    objs = load_all(fixtures / "policy-good.yaml")
    schema = {"type": "object", "required": ["spec"],
              "properties": {"spec": {"type": "object", "required": ["scaleTargetRef"]}}}
    crds = {("keda.sh/v1alpha1", "scaledobject"): jsonschema.Draft202012Validator(schema),
            ("keda.sh/v1alpha1", "triggerauthentication"): jsonschema.Draft202012Validator({})}
    problems, core, custom = kubernetes.schema_problems("t", objs, "1.31", crds)
    assert problems == [] and (core, custom) == (4, 2)

    by_name(objs, "Deployment", "worker")["spec"]["replicaz"] = 2
    del by_name(objs, "ScaledObject", "worker")["spec"]["scaleTargetRef"]
    problems, _, _ = kubernetes.schema_problems("t", objs, "1.31", crds)
    assert any("Deployment/worker" in p and "replicaz" in p for p in problems), problems
    assert any("ScaledObject/worker" in p and "scaleTargetRef" in p for p in problems), problems


def test_the_good_tree_keeps_every_rule(fixtures):
    objs = load_all(fixtures / "policy-good.yaml")
    known = {"WA_SYSTEM_USER_ID", "WA_SYSTEM_USER_TOKEN"}
    assert kubernetes.policy_problems("t", objs, known) == ([], 1)


def broken(fixtures, change):
    objs = load_all(fixtures / "policy-good.yaml")
    objs = copy.deepcopy(objs)
    change({(o["kind"], o["metadata"]["name"]): o for o in objs})
    problems, _ = kubernetes.policy_problems("t", objs, {"WA_SYSTEM_USER_ID", "WA_SYSTEM_USER_TOKEN"})
    return "\n".join(problems)


def container(objs):
    return objs[("Deployment", "worker")]["spec"]["template"]["spec"]["containers"][0]


def test_each_rule_reports_its_breach(fixtures):
    cases = [
        (lambda o: container(o)["securityContext"].pop("readOnlyRootFilesystem"), "readOnlyRootFilesystem"),
        (lambda o: container(o)["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation"),
        (lambda o: container(o)["securityContext"].update(capabilities={}), "drop: [ALL]"),
        (lambda o: container(o)["securityContext"].update(runAsUser=0), "may run as root"),
        (lambda o: container(o)["resources"].pop("limits"), "no resources.limits.memory"),
        (lambda o: container(o)["readinessProbe"]["httpGet"].update(path="/healthz"), "readinessProbe is '/healthz'"),
        (lambda o: container(o)["livenessProbe"]["httpGet"].update(port="http"), "names port 'http'"),
        (lambda o: container(o)["env"].append({"name": "WA_TOKEN_KEY", "value": "k"}), "secret WA_TOKEN_KEY as a variable"),
        (lambda o: container(o)["env"][0].update(value="/run/secrets/wa/other"), "is not a file of a mounted Secret"),
        (lambda o: container(o)["volumeMounts"][0].pop("readOnly"), "is not mounted readOnly"),
        (lambda o: container(o)["envFrom"][0]["configMapRef"].update(name="gone"), "ConfigMap gone is not in"),
        (lambda o: container(o)["env"].append({"name": "WA_TYPO", "value": "1"}), "['WA_TYPO']"),
        (lambda o: container(o)["env"].pop(0), "without WA_SYSTEM_USER_TOKEN_FILE"),
        (lambda o: o[("Deployment", "worker")]["spec"].update(replicas=2), "sets replicas"),
        (lambda o: o[("Deployment", "worker")]["spec"]["template"]["spec"].pop("automountServiceAccountToken"),
         "automountServiceAccountToken"),
        (lambda o: o[("Deployment", "worker")]["spec"]["template"]["spec"].pop("securityContext"), "runAsNonRoot"),
        (lambda o: o[("Deployment", "worker")]["spec"]["selector"].update(matchLabels={"app": "x"}),
         "selector does not match"),
        (lambda o: o[("PodDisruptionBudget", "worker")]["spec"]["selector"].update(matchLabels={"app": "x"}),
         "no PodDisruptionBudget"),
        (lambda o: o[("ScaledObject", "worker")]["spec"]["scaleTargetRef"].update(name="x"), "scaled by neither"),
        (lambda o: o[("ScaledObject", "worker")]["spec"]["triggers"][0]["metadata"].update(queueName="q"),
         "not on wa.account_update"),
        (lambda o: o[("ScaledObject", "worker")]["spec"].update(minReplicaCount=0), "minReplicaCount below 1"),
        (lambda o: o[("TriggerAuthentication", "rabbitmq")]["metadata"].update(name="x"),
         "TriggerAuthentication rabbitmq missing"),
        (lambda o: o[("Service", "worker")]["spec"].update(selector={"app": "x"}), "selects no pods"),
    ]
    for change, expected in cases:
        assert expected in broken(fixtures, change), expected


def test_variable_names_are_not_judged_without_the_reference(fixtures):
    objs = load_all(fixtures / "policy-good.yaml")
    container({(o["kind"], o["metadata"]["name"]): o for o in objs})["env"].append({"name": "WA_TYPO", "value": "1"})
    assert kubernetes.policy_problems("t", objs, None) == ([], 1)


def test_the_api_needs_a_network_policy_admitting_named_peers_only(fixtures):
    objs = copy.deepcopy(load_all(fixtures / "policy-good.yaml"))
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}
    container(by)["args"] = ["api"]
    known = {"WA_SYSTEM_USER_ID", "WA_SYSTEM_USER_TOKEN"}
    problems, _ = kubernetes.policy_problems("t", objs, known)
    assert any("no NetworkPolicy restricts" in p for p in problems), problems
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "api"},
              "spec": {"podSelector": {"matchLabels": {"app": "worker"}}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"client": "true"}}}]}]}}
    assert kubernetes.policy_problems("t", objs + [policy], known) == ([], 1)
    policy["spec"]["ingress"].append({"ports": [{"port": 8090}]})
    problems, _ = kubernetes.policy_problems("t", objs + [policy], known)
    assert any("no NetworkPolicy restricts" in p for p in problems), problems

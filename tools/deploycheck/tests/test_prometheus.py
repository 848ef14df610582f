"""prometheus: runbook anchors and the rules handed to promtool."""

import shutil

import pytest

from deploycheck import prometheus
from deploycheck.report import Failed, load


def test_anchor_is_the_kebab_case_of_the_alert():
    assert prometheus.anchor("WaOnboardIngress5xxRatio") == "wa-onboard-ingress-5xx-ratio"
    assert prometheus.anchor("WaOnboardDlqNotEmpty") == "wa-onboard-dlq-not-empty"


def test_slugs_of_headings_explicit_ids_and_html_anchors():
    md = "# Runbooks\n## WaOnboard DLQ: not empty!\n### Broker {#broker-down}\n<a id=\"x-y\"></a>\n"
    assert {"runbooks", "waonboard-dlq-not-empty", "broker-down", "x-y"} <= prometheus.github_slugs(md)


def test_runbook_problems(fixtures):
    rules = load(fixtures / "alerts.yml")
    problems, anchors = prometheus.runbook_problems(rules, "## wa-onboard-dlq-not-empty\n")
    assert anchors == ["wa-onboard-dlq-not-empty", "wa-onboard-ingress-5xx-ratio"]
    assert problems == [
        (
            "WaOnboardIngress5xxRatio: runbook annotation is 'docs/OPERATIONS.md#wrong', "
            "want 'docs/OPERATIONS.md#wa-onboard-ingress-5xx-ratio'"
        ),
        "WaOnboardIngress5xxRatio: no summary annotation",
        "WaOnboardIngress5xxRatio: severity label is not critical, warning or info",
        "docs/OPERATIONS.md has no anchor #wa-onboard-ingress-5xx-ratio",
    ]
    # Without docs/OPERATIONS.md the anchors are not looked up.
    assert len(prometheus.runbook_problems(rules, None)[0]) == 3


def test_strip_annotations_keeps_everything_else(fixtures):
    rules = load(fixtures / "alerts.yml")
    stripped = prometheus.strip_annotations(rules)
    assert all("annotations" not in r for g in stripped["groups"] for r in g["rules"])
    assert stripped["groups"][0]["rules"][1]["labels"] == {"severity": "warning"}
    assert "annotations" in rules["groups"][0]["rules"][1]  # the input is left alone


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_judges_the_rules(fixtures, tmp_path):
    assert prometheus.check_rules(fixtures / "alerts.yml") == "alerts.yml: 2 alerting rules are valid"
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n")
    with pytest.raises(Failed):
        prometheus.check_rules(bad)

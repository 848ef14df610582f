"""grafana: dashboard structure, panel queries, provisioning mounts."""

import json

from deploycheck import grafana


def test_interval_variables_become_durations_and_others_are_refused():
    assert grafana.promql_of("rate(x[$__rate_interval])") == "rate(x[5m])"
    assert grafana.promql_of("increase(x[$__range]) / $__interval") == "increase(x[1h]) / 1m"
    assert grafana.promql_of('x{job="$job"}') is None


def test_dashboard_problems_and_queries(fixtures):
    dash = json.loads((fixtures / "dashboard.json").read_text())
    problems, rules = grafana.dashboard_problems("d.json", dash, {"prometheus"})
    assert rules == [{"record": "dashboard:panel_2_A", "expr": "sum(rate(wa_x_total[5m]))"}]
    assert problems == [
        "d.json: panel id 2 used twice",
        "d.json: panel 'Wide' is wider than the grid",
        "d.json: panel 'Wide' uses an unknown data source 'elsewhere'",
        "d.json: panel 'Wide' has no targets or duplicate refIds",
        "d.json: panel 'Wide': unsupported variable in 'wa_y{job=\"$job\"}'",
        "d.json: panel 'Wide' target A has no expr",
    ]


def test_a_datasource_variable_must_default_to_a_provisioned_uid(fixtures):
    dash = json.loads((fixtures / "dashboard.json").read_text())
    problems, _ = grafana.dashboard_problems("d.json", dash, {"other"})
    assert problems[0].startswith("d.json: variable datasource defaults to")


def test_dashboards_must_be_mounted_into_a_provider_folder():
    service = {"volumes": ["./deploy/grafana/a.json:/etc/grafana/dashboards/a.json:ro"]}
    assert grafana.mount_problems(["a.json"], service, {"/etc/grafana/dashboards"}) == []
    assert grafana.mount_problems(["a.json"], service, {"/var/dashboards"}) == [
        "a.json: not mounted by docker-compose.yml into a provisioned dashboard folder ['/var/dashboards']"
    ]

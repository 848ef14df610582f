"""compose: the structure of docker-compose.yml and the variables of the wa-onboard services."""

from deploycheck import compose
from deploycheck.reference import table_variables
from deploycheck.report import load


def test_the_name_key_is_taken_out_for_docker_compose_1_29():
    name, rest = compose.without_name("name: demo\nservices:\n  a: {}\n")
    assert (name, rest) == ("demo", "services:\n  a: {}\n")
    assert compose.without_name("services: {}\n") == (None, "services: {}\n")


def test_wa_onboard_services_are_those_built_here_or_from_its_image(fixtures):
    assert set(compose.wa_services(load(fixtures / "docker-compose.yml"))) == {"ingress", "worker"}


def test_structure_problems(fixtures, tmp_path):
    problems = compose.structure_problems(load(fixtures / "docker-compose.yml"), tmp_path)
    assert problems == [
        "unknown top-level key 'unknown'",
        "worker: depends_on unknown service nobody",
        "worker: bind-mount source ./missing-dir does not exist",
        "worker: volume cache is not declared",
        "worker: port '9090:9090' is published on every interface",
        "mystery: neither image nor build",
        "no otel-collector service",
        "no jaeger service",
        "no prometheus service",
        "no grafana service",
    ]


def test_a_service_depends_only_on_services_its_profiles_start(tmp_path):
    services = {
        "redis": {"image": "redis:7"},
        "redis-cluster-1": {"image": "redis:7", "profiles": ["cluster"]},
        "redis-cluster-init": {"image": "redis:7", "profiles": ["cluster"],
                               "depends_on": ["redis-cluster-1", "redis"]},
        "worker": {"image": "wa-onboard:local", "depends_on": {"redis-cluster-1": {}}},
    }
    problems = compose.structure_problems({"services": services}, tmp_path)
    assert [p for p in problems if "profiles" in p] == [
        "worker: depends_on redis-cluster-1, which only the profiles ['cluster'] start",
    ]


def test_env_against_the_reference_table(fixtures):
    known = table_variables((fixtures / "REFERENCE.md").read_text())
    problems, count = compose.env_problems(load(fixtures / "docker-compose.yml"), known)
    assert count == 7
    assert [p.split(" is neither")[0] for p in problems] == ["ingress: WA_UNDOCUMENTED", "worker: WA_TYPO"]

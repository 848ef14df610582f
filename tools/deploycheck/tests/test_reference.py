"""reference: the variables of docs/REFERENCE.md's `## Variables` table."""

from deploycheck.reference import env_name_ok, load_variables, table_variables


def test_reads_every_name_of_the_first_column_in_the_variables_section(fixtures):
    names = table_variables((fixtures / "REFERENCE.md").read_text())
    assert names == {"WA_LISTEN", "WA_SYSTEM_USER_ID", "WA_SYSTEM_USER_TOKEN", "WA_APP_SECRET",
                     "AMQP_URL", "WA_NOTE_ONLY"}


def test_names_in_other_columns_and_sections_do_not_count():
    text = "## Routes\n| `WA_A` |\n## Variables\n| name | x |\n| --- | --- |\n| `WA_B` | `WA_C` |\n"
    assert table_variables(text) == {"WA_B"}


def test_a_missing_reference_is_none_not_an_empty_set(tmp_path):
    assert load_variables(tmp_path) is None


def test_allowed_names():
    known = {"WA_APP_SECRET", "WA_LISTEN"}
    for name in ("WA_LISTEN", "WA_APP_SECRET_FILE", "WA_AMQP_PREFIX", "WA_GRAPH_SIM_LISTEN",
                 "OTEL_SERVICE_NAME"):
        assert env_name_ok(name, known), name
    for name in ("WA_TYPO_FILE", "WA_TYPO", "OTEL_", "wa_listen"):
        assert not env_name_ok(name, known), name

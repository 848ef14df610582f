"""report: one line per check, the problems below a FAIL line."""

import io

from deploycheck.report import Failed, Skipped, run


def line_of(check):
    out = io.StringIO()
    ok = run("demo", check, out)
    return ok, out.getvalue()


def test_ok_skip_and_fail_lines():
    assert line_of(lambda: "3 things") == (True, "ok    demo: 3 things\n")

    def skipped():
        raise Skipped("no tool here")

    assert line_of(skipped) == (True, "skip  demo: no tool here\n")

    def failed():
        raise Failed(["a is wrong", "b is wrong", "a is wrong"])

    assert line_of(failed) == (False, "FAIL  demo: 2 problem(s)\n      | a is wrong\n      | b is wrong\n")


def test_a_crash_fails_that_check_only():
    ok, text = line_of(lambda: {}["missing"])
    assert not ok and text.startswith("FAIL  demo: KeyError: 'missing'\n")

"""The outcome of one check and how it is printed; reading YAML files.

Owns the `ok NAME: ...` / `FAIL NAME: ...` / `skip NAME: ...` line format. Never decides what
a check looks at: the family modules do.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

import yaml


class Failed(Exception):
    """A check found problems: each is one line of the report below its FAIL line."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(dict.fromkeys(problems))  # in order, without repeats
        super().__init__(f"{len(self.problems)} problem(s)")


class Skipped(Exception):
    """A check that cannot run here (a tool that is not installable); says why."""


def raise_if(problems: list[str]) -> None:
    if problems:
        raise Failed(problems)


def run(name: str, check: Callable[[], str], out: TextIO) -> bool:
    """Runs `check` (which returns a one-line summary) and prints its line; True unless it failed."""
    try:
        summary = check()
    except Skipped as e:
        print(f"skip  {name}: {e}", file=out)
        return True
    except Failed as e:
        print(f"FAIL  {name}: {e}", file=out)
        for problem in e.problems:
            for line in problem.splitlines():
                print(f"      | {line}", file=out)
        return False
    except Exception as e:  # noqa: BLE001 - a crash is a failure of that check, not of the others
        print(f"FAIL  {name}: {type(e).__name__}: {e}", file=out)
        for line in traceback.format_exc().splitlines():
            print(f"      | {line}", file=out)
        return False
    print(f"ok    {name}: {summary}", file=out)
    return True


def load_all(path: Path) -> list[Any]:
    """The non-empty documents of a YAML file."""
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load(path: Path) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)

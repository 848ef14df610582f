#!/usr/bin/env bash
# Schemathesis against the internal API: installs schemathesis from PyPI (pinned in
# tools/apicheck/requirements.txt) into tools/apicheck/.venv when missing, then runs the
# ignored test crates/api/tests/it/schemathesis.rs, which starts the API on port 0 against the
# real Redis (its own key prefix, a few tenants seeded) and runs `schemathesis run
# docs/openapi.yaml` with the checks not_a_server_error, status_code_conformance,
# content_type_conformance, response_schema_conformance and ignored_auth (no route works
# without its bearer), at most SCHEMATHESIS_EXAMPLES (default 100) examples per operation.
# Prints schemathesis's summary: operations, test cases, failures.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=tools/apicheck
VENV=$DIR/.venv
stamp=$(sha256sum "$DIR/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "check-api: installing schemathesis into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$DIR/requirements.txt" >&2
  echo "$stamp" >"$VENV/.stamp"
fi

SCHEMATHESIS="$PWD/$VENV/bin/schemathesis" SCHEMATHESIS_EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}" \
  cargo test -q -p wa-api --test it -- --ignored --exact schemathesis::schemathesis_finds_nothing --nocapture

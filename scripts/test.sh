#!/usr/bin/env bash
# The project's test command: starts the services the tests need, validates the deploy
# artefacts and the dependency policy, then format, lint and the whole test suite against the
# real RabbitMQ and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
scripts/check-deploy.sh
# The dependency policy of deny.toml: licences, banned crates and features, sources. Not
# advisories: they need the RustSec database, which this machine cannot fetch.
cargo deny --version >/dev/null 2>&1 || cargo install --locked cargo-deny
cargo deny check bans licenses sources
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# Schemathesis (PyPI) against the running internal API and docs/openapi.yaml.
scripts/check-api.sh
# Failure tests (broker stopped, Redis cut, workers killed, Graph down) run alone, one at a
# time, on their own RabbitMQ node (scripts/failures-rabbitmq.sh, started by services.sh);
# the node-loss test on the 3-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh, likewise).
cargo test -p wa-onboard --test failures -- --ignored --test-threads=1 --nocapture
# The fuzz targets are run by scripts/fuzz.sh, not here; this keeps them building.
cargo check --quiet --manifest-path fuzz/Cargo.toml

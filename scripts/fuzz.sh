#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time. Not run by CI (CI only keeps the
# targets compiling: `cargo check --manifest-path fuzz/Cargo.toml`).
#
#   scripts/fuzz.sh                    # every target, 60 s each
#   FUZZ_SECONDS=20 scripts/fuzz.sh    # shorter
#   scripts/fuzz.sh envelope           # some targets only
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz wants a nightly toolchain for
# `-Zsanitizer`; with only stable installed, RUSTC_BOOTSTRAP=1 lets stable accept those flags
# (set here unless the caller chose otherwise). Corpora grow in fuzz/corpus/<target>/, crashes
# land in fuzz/artifacts/<target>/ (both git-ignored); fuzz/seeds/<target>/ (committed) holds
# the documented examples each run starts from, fuzz/json.dict the JSON tokens and names. Exit status: 0 if no target crashed.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build

failed=()
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    corpora=("fuzz/corpus/$target")
    [ -d "fuzz/seeds/$target" ] && corpora+=("fuzz/seeds/$target")
    echo "== fuzz $target for ${seconds}s"
    if ! cargo fuzz run "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -dict=fuzz/json.dict -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "no crash in: ${targets[*]}"

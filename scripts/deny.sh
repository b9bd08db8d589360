#!/usr/bin/env bash
# Supply-chain check (RELIABILITY.md, "Supply chain"): the licences, bans
# and sources of every dependency, all features, against deny.toml.
#
#   scripts/deny.sh            # licenses bans sources (works offline)
#   scripts/deny.sh advisories # RustSec advisories: needs github.com
#
# Needs cargo-deny: cargo install --locked cargo-deny
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null 2>&1; then
    echo "scripts/deny.sh: cargo-deny is missing:" \
        "cargo install --locked cargo-deny" >&2
    exit 1
fi
if [[ $# -gt 0 ]]; then
    exec cargo deny check "$@"
fi
exec cargo deny --offline check licenses bans sources

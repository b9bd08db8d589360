#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, the decoder-only build, and
# every test (unit, integration, doc), against a throwaway PostgreSQL 15
# server and a moto (S3/SQS emulator) server that this script provisions on
# free ports on 127.0.0.1 and tears down on exit, failure or Ctrl-C.
#
#     ./test.sh                  # everything
#     ./test.sh loader_pg        # extra args go to both `cargo test` calls
#
# Needs: Debian 12 (or similar), Rust stable, python3 with pip. Installs
# PostgreSQL 15 with apt-get if its binaries are missing (as root) and the
# pinned moto[server] with pip if it is missing or a different version.
#
# Environment knobs:
#   PYTHON                python interpreter for moto (default: python3)
#   CWL_TEST_KEEP_TMP=1   keep the temp dir (data dir, server logs) on exit
#   CWL_TEST_NO_LINT=1    skip fmt, clippy and the decoder-only build (for
#                         a quick local loop; CI never sets it)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

# shellcheck source=scripts/pg.sh
source scripts/pg.sh
readonly PG_BIN
readonly MOTO_VERSION=5.2.5
readonly START_TIMEOUT_S=60

section() {
    printf '\n\033[1m==> %s\033[0m  (t=%ss)\n' "$*" "$SECONDS"
}
die() {
    printf 'test.sh: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Provisioning: PostgreSQL 15 binaries, moto[server], rustfmt/clippy.
# ---------------------------------------------------------------------------
section "Provisioning tools"

pg_install
echo "postgres: $("$PG_BIN/postgres" --version)"

# moto in a virtual environment of its own version (scripts/moto.sh).
# 5.2.5: 5.2.1 answers CompleteMultipartUpload with the wrong XML root
# (getmoto/moto#10055), which the AWS SDK rejects.
# shellcheck source=scripts/moto.sh
source scripts/moto.sh
moto_install "$MOTO_VERSION"
PY=$MOTO_PY
echo "moto: $MOTO_VERSION ($PY)"

if ! cargo fmt --version >/dev/null 2>&1 ||
    ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || die "cargo fmt/clippy missing, no rustup"
    rustup component add rustfmt clippy
fi

# ---------------------------------------------------------------------------
# Services, torn down by the EXIT trap whatever happens next.
# ---------------------------------------------------------------------------
TMP=
MOTO_PID=

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    if [[ -n $MOTO_PID ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$MOTO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$MOTO_PID" 2>/dev/null
        wait "$MOTO_PID" 2>/dev/null
    fi
    pg_stop
    if [[ -n $TMP && -d $TMP ]]; then
        if [[ ${CWL_TEST_KEEP_TMP:-} == 1 ]]; then
            echo "test.sh: kept $TMP" >&2
        else
            rm -rf "$TMP"
        fi
    fi
    if [[ $rc == 0 ]]; then
        printf '\n\033[1;32mAll passed\033[0m in %ss\n' "$SECONDS"
    else
        printf '\n\033[1;31mFAILED\033[0m (exit %s) after %ss\n' \
            "$rc" "$SECONDS" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

TMP=$(mktemp -d /tmp/cwl-copy-test.XXXXXX)
chmod 755 "$TMP"
# pg.sh's free-port chooser serves moto too.
PG_PYTHON=$PY

section "Starting PostgreSQL 15"
PG_START_ATTEMPTS=3
PG_START_TIMEOUT_S=$START_TIMEOUT_S
PG_WAIT_READY=1
PG_LOG_TAIL=30
# fsync=off: a throwaway cluster; crash tests restart the server, they
# don't crash the OS. synchronous_commit stays on: a committed
# transaction must survive `pg_ctl restart -m immediate`.
pg_start "$TMP" "$TMP/data" -c fsync=off -c full_page_writes=off
echo "postgres ready on 127.0.0.1:$PG_PORT (data: $PG_DATA)"

section "Starting moto $MOTO_VERSION (S3/SQS emulator)"
MOTO_PORT=
for attempt in 1 2 3; do
    port=$(pg_free_port)
    # moto's server with its SQS delete made atomic (scripts/moto_server.py).
    "$PY" scripts/moto_server.py -H 127.0.0.1 -p "$port" \
        >>"$TMP/moto.log" 2>&1 </dev/null &
    MOTO_PID=$!
    # Poll until it answers HTTP (any status), it dies, or the deadline.
    if "$PY" - "$port" "$MOTO_PID" "$START_TIMEOUT_S" <<'EOF'; then
import os, sys, time, urllib.request, urllib.error
port, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
        MOTO_PORT=$port
        break
    fi
    echo "moto did not start on port $port (attempt $attempt)" >&2
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
done
[[ -n $MOTO_PORT ]] ||
    { tail -n 30 "$TMP/moto.log" >&2; die "moto did not start"; }
echo "moto ready on 127.0.0.1:$MOTO_PORT (pid $MOTO_PID)"

# What tests/support reads. Tests panic, not skip, when these are missing.
export CWL_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=postgres
export CWL_TEST_PG_BIN=$PG_BIN
export CWL_TEST_PG_DATA=$PG_DATA
export CWL_TEST_PG_LOG=$PG_LOG
export CWL_TEST_PG_RUNAS=$PG_RUNAS
export CWL_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export CWL_TEST_MOTO_PYTHON=$PY
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL

# ---------------------------------------------------------------------------
# The suite. Each step must pass before the next starts.
# ---------------------------------------------------------------------------
# A CI build is cold and thrown away: incremental state only slows it down.
if [[ ${CI:-} == true ]]; then
    export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
fi

if [[ ${CWL_TEST_NO_LINT:-} != 1 ]]; then
section "cargo fmt --all -- --check"
cargo fmt --all -- --check

section "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

section "cargo clippy --no-default-features --lib -- -D warnings"
cargo clippy --no-default-features --lib -- -D warnings

# The README's first command's build: the decoder and the CLI without the
# loader (no AWS SDK, no tokio), warnings denied.
section "cargo build --no-default-features --features cli"
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo build --no-default-features --features cli

# The fuzz targets (their own workspace, fuzz/) build on stable: checked,
# not run (the campaign is `fuzz/campaign.sh`, RELIABILITY.md); their
# invariants run on every test run (tests/fuzz_corpus.rs). Every target,
# the loader's parsers included.
# Clippy, in the main target directory (a workspace of its own would
# otherwise get fuzz/target), so the dependencies checked above are reused
# (fuzz/Cargo.lock pins the same versions as Cargo.lock).
section "cargo clippy --manifest-path fuzz/Cargo.toml --features loader --bins -- -D warnings"
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target} \
    cargo clippy --manifest-path fuzz/Cargo.toml --features loader --bins -- -D warnings
fi

section "cargo test --all-targets${*:+ $*}"
cargo test --all-targets "$@"

section "cargo test --doc${*:+ $*}"
cargo test --doc "$@"

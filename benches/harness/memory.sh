#!/usr/bin/env bash
# Peak RSS of `cwl-copy load` into a throwaway PostgreSQL 15, by corpus and
# by --csv-memory-bytes (issue #9's memory target). Reuses the corpora
# benches/harness/run.sh generated under bench-data/ (run it once first),
# and generates the two-large-object corpus (2 objects of ~137 MB gzip,
# ~740 MB inflated each) if it is missing.
#
#     benches/harness/memory.sh [--markdown FILE]
#
# Builds the release binary (default features) in $CARGO_TARGET_DIR (or
# target/). Peak RSS is GNU time's maximum resident set size of the
# client; each load goes into a fresh schema and its row count is checked
# against the summary.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MARKDOWN=
[[ ${1:-} == --markdown ]] && MARKDOWN=$2
DATA=$REPO/bench-data
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
die() { echo "memory.sh: $*" >&2; exit 1; }
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) missing"
[[ -d $DATA/corpus-1024mb-200/objects ]] || die "no $DATA/corpus-1024mb-200: run benches/harness/run.sh first"

cargo build --release --quiet --manifest-path "$REPO/Cargo.toml" --bin cwl-copy --example gen_corpus
BIN=$TARGET/release/cwl-copy
BIG=$DATA/big-2
[[ -d $BIG/objects ]] || "$TARGET/release/examples/gen_corpus" gen "$BIG" --mb 1400 --objects 2 --seed 42 >/dev/null

OUT=$(mktemp -d /tmp/cwl-memory.XXXXXX)
chmod 755 "$OUT"
# shellcheck source=../../scripts/pg.sh
source "$REPO/scripts/pg.sh"
cleanup() { local rc=$?; set +e; pg_stop; rm -rf "$OUT"; exit "$rc"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg_install
pg_start "$OUT" "$OUT/pgdata" -c max_wal_size=4GB -c fsync=off
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=postgres

rows=()
n=0
measure() { # name corpus-dir extra-flags...
    local name=$1 dir=$2; shift 2
    n=$((n + 1))
    local schema=mem$n
    psql -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $schema"
    /usr/bin/time -f '%M %e %U %S' -o "$OUT/time" "$BIN" load \
        --columns "$REPO/testdata/specs/integrated_user_log.toml" \
        --target "postgres://postgres@127.0.0.1:$PG_PORT/postgres" \
        --schema "$schema" --create-table --summary-json "$OUT/sum.json" \
        "$@" "$dir/objects" >/dev/null 2>"$OUT/err" || {
        local rc=$?; [[ $rc == 3 ]] || { cat "$OUT/err" >&2; die "$name: exit $rc"; }
    }
    read -r kb wall user sys <"$OUT/time"
    local loaded spilled
    loaded=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rows"])' "$OUT/sum.json")
    spilled=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["objects_spilled"], s["bytes_spilled"])' "$OUT/sum.json")
    local in_table
    in_table=$(psql -X -At -c "SELECT count(*) FROM $schema.integrated_user_log")
    [[ $in_table == "$loaded" ]] || die "$name: $in_table rows in the table, $loaded in the summary"
    rows+=("| $name | $((kb / 1024)) | $wall | $(python3 -c "print(round($user+$sys,2))") | $loaded | ${spilled% *} | $(( ${spilled#* } / 1048576 )) |")
    echo "${rows[-1]}"
}

echo "| load (local files, PostgreSQL 15) | peak RSS MB | wall s | CPU s (client) | rows | objects spilled | MiB spilled |"
echo "|---|---|---|---|---|---|---|"
measure "1 GB corpus, 200 objects, defaults" "$DATA/corpus-1024mb-200"
[[ -d $DATA/corpus-4096mb-800/objects ]] &&
    measure "4 GB corpus, 800 objects, defaults" "$DATA/corpus-4096mb-800"
measure "2 objects of 137 MB gzip, defaults" "$BIG"
measure "1 GB corpus, --csv-memory-bytes 0" "$DATA/corpus-1024mb-200" --csv-memory-bytes 0
measure "1 GB corpus, --csv-memory-bytes 1073741824 (all in memory)" "$DATA/corpus-1024mb-200" --csv-memory-bytes 1073741824

if [[ -n $MARKDOWN ]]; then
    {
        echo "| load (local files, PostgreSQL 15) | peak RSS MB | wall s | CPU s (client) | rows | objects spilled | MiB spilled |"
        echo "|---|---|---|---|---|---|---|"
        printf '%s\n' "${rows[@]}"
    } >"$MARKDOWN"
fi

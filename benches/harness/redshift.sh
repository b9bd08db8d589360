#!/usr/bin/env bash
# Issue #11's benchmark rows: the Redshift target through the test suite's
# stand-in (examples/redshift_standin.rs: the Data API, executing on a
# throwaway PostgreSQL 15 and reading staged parts from moto).
#
#     benches/harness/redshift.sh [--markdown FILE]
#
# - staging throughput: `cwl-copy load` into the stand-in of the 1 GB
#   corpus; the client's CPU (GNU time) is convert + gzip of the parts +
#   upload to moto, next to `convert` of the same corpus to /dev/null;
# - 1,000 small objects as one manifest COPY per batch (defaults) against
#   one COPY per object (--batch-objects 1).
#
# Caveat: the stand-in's COPY is PostgreSQL's COPY FROM STDIN fed by a
# Rust process reading moto; a real Redshift's per-COPY cost (a commit,
# cluster-wide) is far higher, so the per-object row understates what one
# COPY per object costs on a cluster.
#
# Reuses bench-data/ from benches/harness/run.sh (run it once with --load
# first) and builds release binaries in $CARGO_TARGET_DIR (or target/).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MARKDOWN=
[[ ${1:-} == --markdown ]] && MARKDOWN=$2
DATA=$REPO/bench-data
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
MOTO_VERSION=5.2.5 # as test.sh
die() { echo "redshift.sh: $*" >&2; exit 1; }
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) missing"
CORPUS=$DATA/corpus-1024mb-200
SMALL=$DATA/small-1000
[[ -d $CORPUS/objects && -d $SMALL ]] || die "no $CORPUS or $SMALL: run benches/harness/run.sh --load first"
# shellcheck source=../../scripts/moto.sh
source "$REPO/scripts/moto.sh"
moto_install "$MOTO_VERSION"

cargo build --release --quiet --manifest-path "$REPO/Cargo.toml" --bin cwl-copy --example redshift_standin
BIN=$TARGET/release/cwl-copy
STAND=$TARGET/release/examples/redshift_standin
SPEC=$REPO/testdata/specs/integrated_user_log.toml

OUT=$(mktemp -d /tmp/cwl-rsbench.XXXXXX)
chmod 755 "$OUT"
# shellcheck source=../../scripts/pg.sh
source "$REPO/scripts/pg.sh"
MOTO_PID= STAND_PID=
cleanup() {
    local rc=$?
    set +e
    for p in $STAND_PID $MOTO_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pg_stop
    rm -rf "$OUT"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg_install
pg_start "$OUT" "$OUT/pgdata" -c max_wal_size=4GB -c fsync=off
MOTO_PORT=$(pg_free_port)
"$MOTO_PY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$OUT/moto.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$MOTO_PORT/" >/dev/null && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$MOTO_PORT
export CWL_TEST_PG_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres CWL_TEST_AWS_ENDPOINT=$AWS_ENDPOINT_URL_S3
"$MOTO_PY" -c 'import boto3,sys; boto3.client("s3", endpoint_url=sys.argv[1]).create_bucket(Bucket="staging")' "$AWS_ENDPOINT_URL_S3"
"$STAND" --slices 2 >"$OUT/stand.out" 2>"$OUT/stand.log" &
STAND_PID=$!
for _ in $(seq 100); do grep -q data_api= "$OUT/stand.out" 2>/dev/null && break; sleep 0.2; done
grep -q data_api= "$OUT/stand.out" || { cat "$OUT/stand.log" >&2; die "the stand-in did not start"; }
AWS_ENDPOINT_URL_REDSHIFT_DATA=$(sed -n 's/^data_api=\([^ ]*\) .*/\1/p' "$OUT/stand.out")
export AWS_ENDPOINT_URL_REDSHIFT_DATA
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres PGDATABASE=postgres

inflated() { sed -n 's/^inflated_bytes=//p' "$1/manifest"; }
rows=()
n=0
row() { # name inflated-bytes command...
    local name=$1 bytes=$2; shift 2
    /usr/bin/time -f '%e %U %S %M' -o "$OUT/time" "$@" >/dev/null 2>"$OUT/err" || {
        local rc=$?; [[ $rc == 3 ]] || { tail -5 "$OUT/err" >&2; die "$name: exit $rc"; }
    }
    read -r wall user sys kb <"$OUT/time"
    local cpu extra=""
    cpu=$(python3 -c "print(round($user + $sys, 2))")
    if [[ -s $OUT/sum.json ]]; then
        extra=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("{:,} rows in {:,} batches, {} objects spilled".format(s["rows"], s["batches"], s["objects_spilled"]), end="")' "$OUT/sum.json")
        rm -f "$OUT/sum.json"
    fi
    rows+=("| $name | $wall | $cpu | $((kb / 1024)) | $(python3 -c "print(round($bytes / 1e6 / $cpu))") | $extra |")
    echo "${rows[-1]}"
}
CMD=()
load() { # schema input extra...: the load command into CMD
    local schema=$1 input=$2; shift 2
    psql -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $schema"
    CMD=("$BIN" load --columns "$SPEC"
        --target "redshift-data://cluster/bench/dev?db_user=bench"
        --iam-role default --staging "s3://staging/$schema/" --slices 2
        --schema "$schema" --create-table --summary-json "$OUT/sum.json" "$@" "$input")
}
header="| contender | wall s | CPU s (client) | peak RSS MB | MB/CPU-s (inflated) | loaded |"
echo "$header"; echo "|---|---|---|---|---|---|"
row "convert --threads 2 → /dev/null, 1 GB corpus" "$(inflated "$CORPUS")" \
    "$BIN" convert --columns "$SPEC" --threads 2 --out /dev/null "$CORPUS/objects"
load rs_corpus "$CORPUS/objects" --threads 2
row "load → Redshift stand-in (Data API), 1 GB corpus: convert + gzip parts + upload" "$(inflated "$CORPUS")" "${CMD[@]}"
load rs_small_batch "$SMALL/objects" --threads 2
row "load → stand-in, 1,000 small objects, one manifest COPY per batch (defaults)" "$(inflated "$SMALL")" "${CMD[@]}"
load rs_small_each "$SMALL/objects" --threads 2 --batch-objects 1
row "load → stand-in, 1,000 small objects, one COPY per object (--batch-objects 1)" "$(inflated "$SMALL")" "${CMD[@]}"
# Issue #9's memory target, from S3: the corpus uploaded to moto, then
# loaded into PostgreSQL (peak RSS of the client).
"$MOTO_PY" - "$AWS_ENDPOINT_URL_S3" "$CORPUS/objects" <<'PY'
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
s3.create_bucket(Bucket="corpus")
for root, _, files in sorted(os.walk(sys.argv[2])):
    for name in sorted(files):
        path = os.path.join(root, name)
        s3.upload_file(path, "corpus", "app-logs/" + os.path.relpath(path, sys.argv[2]))
PY
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA s3_load"
row "load from S3 (moto) → PostgreSQL, 1 GB corpus, defaults" "$(inflated "$CORPUS")" \
    "$BIN" load --columns "$SPEC" --target "postgres://postgres@127.0.0.1:$PG_PORT/postgres" \
    --schema s3_load --create-table --summary-json "$OUT/sum.json" s3://corpus/app-logs/
for s in rs_corpus rs_small_batch rs_small_each s3_load; do
    printf '%s: %s rows\n' "$s" "$(psql -X -At -c "SELECT count(*) FROM $s.integrated_user_log")"
done
if [[ -n $MARKDOWN ]]; then
    { echo "$header"; echo "|---|---|---|---|---|---|"; printf '%s\n' "${rows[@]}"; } >"$MARKDOWN"
fi

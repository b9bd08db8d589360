# shellcheck shell=bash
# A throwaway PostgreSQL 15 cluster on a free port of 127.0.0.1, for the
# scripts that need one (test.sh, benches/harness/run.sh). Sourced, not run:
#
#     source scripts/pg.sh
#     cleanup() { pg_stop; ...; }; trap cleanup EXIT
#     pg_start "$TMP" "$TMP/data" -c fsync=off
#
# The caller defines die MESSAGE (print, exit non-zero) and owns the traps:
# pg_stop belongs in its EXIT trap, set before pg_start, so that a server
# that started, or half started, is stopped on exit, failure or a signal.
#
# Knobs, read by pg_start (set them after sourcing):
#   PG_PYTHON=python3       interpreter that picks the free port
#   PG_START_ATTEMPTS=1     ports to try, each a fresh one
#   PG_START_TIMEOUT_S=60   pg_ctl start -t, and the pg_isready deadline
#   PG_WAIT_READY=0         1: also poll pg_isready over TCP until it answers
#   PG_LOG_TAIL=20          lines of the server log shown when it fails
#
# State, set by pg_start and read by pg_stop and the caller:
#   PG_DIR PG_DATA PG_LOG PG_PORT PG_STARTED
#   PG_RUNAS                "postgres" when run as root (initdb refuses
#                           root), empty otherwise

PG_BIN=/usr/lib/postgresql/15/bin
PG_PYTHON=python3
PG_START_ATTEMPTS=1
PG_START_TIMEOUT_S=60
PG_WAIT_READY=0
PG_LOG_TAIL=20

PG_DIR=
PG_DATA=
PG_LOG=
PG_PORT=
PG_STARTED=
PG_RUNAS=

# pg_run CMD...: runs CMD as the cluster's owner (see PG_RUNAS). From
# PG_DIR: postgres may not be able to read the caller's working directory.
pg_run() {
    if [[ -n $PG_RUNAS ]]; then
        (cd "$PG_DIR" && runuser -u "$PG_RUNAS" -- "$@")
    else
        "$@"
    fi
}

pg_as_root() {
    if [[ $(id -u) == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

# pg_install: installs Debian's PostgreSQL 15 with apt-get (as root, or
# with sudo) if $PG_BIN has no initdb.
pg_install() {
    [[ -x $PG_BIN/initdb ]] && return 0
    echo "PostgreSQL 15 not found at $PG_BIN; installing with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    # Don't let the package create and start its own cluster on :5432.
    pg_as_root mkdir -p /etc/postgresql-common
    echo 'create_main_cluster = false' |
        pg_as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
    pg_as_root apt-get update -q
    pg_as_root apt-get install -y -q --no-install-recommends postgresql-15 ||
        pg_as_root apt-get install -y -q --no-install-recommends postgresql
    [[ -x $PG_BIN/initdb ]] || die "no $PG_BIN/initdb after installing"
}

pg_free_port() {
    "$PG_PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# pg_start DIR DATA [SERVER_OPTION...]: initdb DATA (trust auth, user
# postgres, UTF8, C.UTF-8, no sync) and start it with pg_ctl -w, listening
# on 127.0.0.1 only, its socket in DIR, its logs DIR/initdb.log and
# DIR/postgres.log. Each SERVER_OPTION is added to the postgres command
# line (e.g. -c fsync=off). When run as root, DIR is handed to postgres.
pg_start() {
    local dir=$1 data=$2 port attempt deadline
    shift 2
    PG_DIR=$dir
    if [[ $(id -u) == 0 ]]; then
        PG_RUNAS=postgres
        chown postgres: "$dir"
    else
        PG_RUNAS=
    fi
    PG_DATA=$data
    PG_LOG=$dir/postgres.log
    pg_run "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    PG_PORT=
    for ((attempt = 1; attempt <= PG_START_ATTEMPTS; attempt++)); do
        port=$(pg_free_port)
        PG_STARTED=1
        if pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w \
            -t "$PG_START_TIMEOUT_S" -o "-c listen_addresses=127.0.0.1 \
-p $port -k $dir${*:+ $*}" start >/dev/null; then
            PG_PORT=$port
            break
        fi
        ((PG_START_ATTEMPTS == 1)) ||
            echo "postgres did not start on port $port (attempt $attempt)" >&2
    done
    [[ -n $PG_PORT ]] ||
        { tail -n "$PG_LOG_TAIL" "$PG_LOG" >&2; die "postgres did not start"; }
    ((PG_WAIT_READY)) || return 0
    deadline=$((SECONDS + PG_START_TIMEOUT_S))
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres; do
        ((SECONDS < deadline)) ||
            { tail -n "$PG_LOG_TAIL" "$PG_LOG" >&2; die "postgres not ready"; }
        sleep 0.1
    done
}

# pg_stop: stops what pg_start started (fast shutdown, then kill -9 of the
# postmaster if its pid file is still there); does nothing otherwise.
pg_stop() {
    local pid
    if [[ -n $PG_STARTED && -f $PG_DATA/postmaster.pid ]]; then
        pg_run "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop \
            >/dev/null 2>&1 || true
        if [[ -f $PG_DATA/postmaster.pid ]]; then
            pid=$(head -n1 "$PG_DATA/postmaster.pid")
            [[ -z $pid ]] || kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    return 0
}

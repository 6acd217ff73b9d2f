#!/usr/bin/env bash
# Pooler benchmark: PostgreSQL direct vs PgBouncer vs pggat, on one machine.
#
#   bench/run.sh                        full run (DURATION=10 REPS=3, 1k and 10k idle clients)
#   QUICK=1 bench/run.sh                smoke run (DURATION=3 REPS=1, 1k idle clients)
#   SKIP_PGGAT=1 QUICK=1 bench/run.sh   direct and PgBouncer only
#
# Knobs (environment): DURATION (s per run, 10), REPS (3), POOL (server connections per pooler, 20),
# SCALE (pgbench scale, 10), THREADS (pgbench -j, 2), QUICK (0), SKIP_PGGAT (0),
# PGGAT_BIN (target/release/pggat, rebuilt from this checkout; a given one is used as is),
# PGGAT_MODE (transaction | session), IDLE_COUNTS ("1000 10000"), WORKLOADS (regex on workload names),
# WARMUP (s per target before measuring, 2), RESULTS_DIR (bench/results). WORKLOADS=none runs only
# the idle-client memory measurement. HOLD=1 sets everything up, prints how to reach each target, and
# waits (for profiling by hand: perf record -p, strace -c -p); Ctrl-C stops and cleans up.
#
# Starts a throwaway PostgreSQL cluster, PgBouncer and pggat on free 127.0.0.1 ports (PostgreSQL and
# PgBouncer as the `postgres` user when run as root), runs pgbench workloads against each target
# interleaved, measures idle-client memory, prints a Markdown report and writes it to
# $RESULTS_DIR/latest.md. Everything it started is stopped and deleted on exit, Ctrl-C included.
# Progress goes to stderr; only the report goes to stdout.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$BENCH_DIR")

# The command line as given: the knobs that were set, then the script and its arguments.
INVOCATION=""
for v in QUICK DURATION REPS POOL SCALE THREADS SKIP_PGGAT PGGAT_BIN PGGAT_MODE IDLE_COUNTS WORKLOADS \
  WARMUP RESULTS_DIR; do
  if [ -n "${!v+x}" ]; then INVOCATION+="$v=$(printf '%q' "${!v}") "; fi
done
INVOCATION+="$(printf '%q' "$0")"
for a in "$@"; do INVOCATION+=" $(printf '%q' "$a")"; done

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  DURATION=${DURATION:-3}
  REPS=${REPS:-1}
  IDLE_COUNTS=${IDLE_COUNTS:-1000}
  WARMUP=${WARMUP:-1}
else
  DURATION=${DURATION:-10}
  REPS=${REPS:-3}
  IDLE_COUNTS=${IDLE_COUNTS:-1000 10000}
  WARMUP=${WARMUP:-2}
fi
POOL=${POOL:-20}
SCALE=${SCALE:-10}
THREADS=${THREADS:-2}
SKIP_PGGAT=${SKIP_PGGAT:-0}
# The default binary is (re)built from this checkout, so the report's commit
# is the code measured; a PGGAT_BIN given is used as it is.
if [ -z "${PGGAT_BIN:-}" ]; then BUILD_PGGAT=1; else BUILD_PGGAT=0; fi
PGGAT_BIN=${PGGAT_BIN:-$REPO/target/release/pggat}
PGGAT_MODE=${PGGAT_MODE:-transaction}
WORKLOADS=${WORKLOADS:-.}
RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}

BENCH_USER=bench
BENCH_DB=bench
BENCH_PASSWORD=bench-secret-$$

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

case "$PGGAT_MODE" in transaction | session) ;; *) die "PGGAT_MODE must be transaction or session" ;; esac
for v in DURATION REPS POOL SCALE THREADS WARMUP; do
  [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || die "$v must be a positive integer (got '${!v}')"
done

# ---------------------------------------------------------------------------------------------------
# Prerequisites.

is_root() { [ "$(id -u)" -eq 0 ]; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

missing=()
command -v pgbouncer >/dev/null || missing+=(pgbouncer)
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/pgbench" ] || [ ! -x "$(pg_bin)/initdb" ]; then
  missing+=(postgresql postgresql-contrib)
fi
if [ ${#missing[@]} -gt 0 ]; then
  is_root || die "missing ${missing[*]}: run as root, or install them"
  log "installing ${missing[*]} from Debian's packages"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
PGBIN=$(pg_bin)
[ -x "$PGBIN/pgbench" ] || die "no pgbench under /usr/lib/postgresql/*/bin"
PGBOUNCER=$(command -v pgbouncer)

# PostgreSQL and PgBouncer refuse to run as root: run them as `postgres`. setpriv (not su/runuser)
# keeps the raised fd limit, since it goes through no PAM session.
AS_PG=()
if is_root; then
  id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi

if [ "$SKIP_PGGAT" != 1 ] && { [ "$BUILD_PGGAT" = 1 ] || [ ! -x "$PGGAT_BIN" ]; }; then
  log "cargo build --release (pggat at $PGGAT_BIN)"
  (cd "$REPO" && cargo build --release >&2)
  [ -x "$PGGAT_BIN" ] || die "still no pggat binary at $PGGAT_BIN (set PGGAT_BIN, or SKIP_PGGAT=1)"
fi

# File descriptors: 65536 if the hard limit allows, else the hard limit.
FD_HARD=$(ulimit -Hn)
if [ "$FD_HARD" = unlimited ] || [ "$FD_HARD" -ge 65536 ]; then FD_LIMIT=65536; else FD_LIMIT=$FD_HARD; fi

# ---------------------------------------------------------------------------------------------------
# Cleanup: whatever was started is stopped, and the temp dir removed, on any exit.

WORK=""
PG_STARTED=0
PGB_PID=""
PGGAT_PID=""

stop_pid() {
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  stop_pid "$PGGAT_PID"
  stop_pid "$PGB_PID"
  if [ "$PG_STARTED" = 1 ]; then
    local pmpid i
    pmpid=$(head -1 "$WORK/data/postmaster.pid" 2>/dev/null)
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1
    if [ -n "$pmpid" ]; then
      for i in $(seq 300); do kill -0 "$pmpid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pmpid" 2>/dev/null
    fi
  fi
  [ -n "$WORK" ] && rm -rf "$WORK"
  [ "$rc" -eq 0 ] || log "exiting with status $rc (everything started has been stopped)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK=$(mktemp -d /tmp/pggat-bench.XXXXXX)
is_root && chown postgres:postgres "$WORK"
mkdir -p "$WORK/out"

H() { python3 "$BENCH_DIR/helpers.py" "$@"; }
meta() { printf '%s\t%s\n' "$1" "$2" >>"$WORK/meta.tsv"; }

mapfile -t PORTS < <(H freeports 3)
PG_PORT=${PORTS[0]}
PGB_PORT=${PORTS[1]}
PGGAT_PORT=${PORTS[2]}

unset PGHOST PGPORT PGUSER PGDATABASE PGOPTIONS PGSERVICE PGSERVICEFILE PGPASSFILE
export PGPASSWORD=$BENCH_PASSWORD PGSSLMODE=disable PGCONNECT_TIMEOUT=5

# Superuser access over the cluster's unix socket (trust).
su_psql() { "$PGBIN/psql" -h "$WORK" -p "$PG_PORT" -U postgres -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# Poll until PORT serves the bench role end to end (startup, auth, a query) or PID dies.
wait_ready() {
  local name=$1 port=$2 pid=$3 logf=$4 i
  for i in $(seq 300); do
    if "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U "$BENCH_USER" -d "$BENCH_DB" -X -A -t -q \
      -c 'select 1' >/dev/null 2>&1; then
      log "$name is accepting connections on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$logf" >&2 || true
      die "$name exited before accepting connections"
    fi
    sleep 0.2
  done
  tail -20 "$logf" >&2 || true
  die "$name did not accept connections on port $port within 60 s"
}

# ---------------------------------------------------------------------------------------------------
# PostgreSQL.

log "PostgreSQL cluster in $WORK/data on port $PG_PORT"
"${AS_PG[@]}" env HOME="$WORK" "$PGBIN/initdb" -D "$WORK/data" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 --no-locale -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1 ||
  { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
PG_SETTINGS="max_connections=300, shared_buffers=128MB, fsync=off, synchronous_commit=off"
cat >>"$WORK/data/postgresql.conf" <<EOF

# bench/run.sh: a pooler benchmark, not a disk one.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK'
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
password_encryption = 'scram-sha-256'
EOF
PG_STARTED=1
"${AS_PG[@]}" env HOME="$WORK" "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/postgres.log" -w -t 60 start \
  >/dev/null || { tail -20 "$WORK/postgres.log" >&2; die "PostgreSQL did not start"; }

su_psql -d postgres <<EOF
CREATE ROLE $BENCH_USER LOGIN PASSWORD '$BENCH_PASSWORD';
CREATE DATABASE $BENCH_DB OWNER $BENCH_USER;
EOF
VERIFIER=$(su_psql -d postgres -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$BENCH_USER'")
[[ "$VERIFIER" == SCRAM-SHA-256\$* ]] || die "expected a SCRAM verifier for $BENCH_USER, got '$VERIFIER'"
wait_ready PostgreSQL "$PG_PORT" "" "$WORK/postgres.log"

log "pgbench -i -s $SCALE"
"$PGBIN/pgbench" -i -s "$SCALE" -q -h 127.0.0.1 -p "$PG_PORT" -U "$BENCH_USER" "$BENCH_DB" \
  >"$WORK/pgbench-init.log" 2>&1 || { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }

# ---------------------------------------------------------------------------------------------------
# PgBouncer: clients authenticate with SCRAM against the verifier in auth_file; servers are logged in
# with the password in the [databases] entry (so min_pool_size can pre-warm).

printf '"%s" "%s"\n' "$BENCH_USER" "$VERIFIER" >"$WORK/userlist.txt"
cat >"$WORK/pgbouncer.ini" <<EOF
[databases]
$BENCH_DB = host=127.0.0.1 port=$PG_PORT dbname=$BENCH_DB user=$BENCH_USER password=$BENCH_PASSWORD

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $WORK/userlist.txt
pool_mode = transaction
default_pool_size = $POOL
min_pool_size = $POOL
reserve_pool_size = 0
max_client_conn = 20000
max_db_connections = 0
logfile = $WORK/pgbouncer.log
log_connections = 0
log_disconnections = 0
ignore_startup_parameters = extra_float_digits
EOF
is_root && chown postgres:postgres "$WORK/userlist.txt" "$WORK/pgbouncer.ini"
chmod 600 "$WORK/userlist.txt"

log "PgBouncer on port $PGB_PORT (pool_mode=transaction, default_pool_size=$POOL)"
(
  ulimit -n "$FD_LIMIT"
  exec "${AS_PG[@]}" "$PGBOUNCER" "$WORK/pgbouncer.ini"
) >"$WORK/pgbouncer.out" 2>&1 &
PGB_PID=$!
wait_ready PgBouncer "$PGB_PORT" "$PGB_PID" "$WORK/pgbouncer.log"

# ---------------------------------------------------------------------------------------------------
# pggat: clients check against the same verifier; the pool logs in with the password.

TARGETS=(direct pgbouncer)
if [ "$SKIP_PGGAT" != 1 ]; then
  cat >"$WORK/Gatfile" <<EOF
{
    shutdown_timeout 1s
}

127.0.0.1:$PGGAT_PORT {
    password "$VERIFIER"
    pool /$BENCH_DB {
        address 127.0.0.1:$PG_PORT
        username $BENCH_USER
        password "$BENCH_PASSWORD"
        database $BENCH_DB
        min_connections $POOL
        max_connections $POOL
        pool basic $PGGAT_MODE
    }
}
EOF
  "$PGGAT_BIN" validate --config "$WORK/Gatfile" >&2 || die "pggat rejected the generated Gatfile"
  log "pggat on port $PGGAT_PORT (pool basic $PGGAT_MODE, max_connections=$POOL)"
  (
    ulimit -n "$FD_LIMIT"
    PGGAT_LOG=${PGGAT_LOG:-warn} exec "$PGGAT_BIN" run --config "$WORK/Gatfile"
  ) >"$WORK/pggat.log" 2>&1 &
  PGGAT_PID=$!
  wait_ready pggat "$PGGAT_PORT" "$PGGAT_PID" "$WORK/pggat.log"
  TARGETS+=(pggat)
fi

port_of() { case $1 in direct) echo "$PG_PORT" ;; pgbouncer) echo "$PGB_PORT" ;; pggat) echo "$PGGAT_PORT" ;; esac; }
pid_of() { case $1 in direct) echo "" ;; pgbouncer) echo "$PGB_PID" ;; pggat) echo "$PGGAT_PID" ;; esac; }

# ---------------------------------------------------------------------------------------------------
# Metadata.

pggat_version="(skipped: SKIP_PGGAT=1)"
if [ "$SKIP_PGGAT" != 1 ]; then
  pggat_version="$(git -C "$REPO" describe --always --dirty --tags 2>/dev/null || echo unknown)"
  pggat_version+=" ($PGGAT_BIN, built $(date -u -r "$PGGAT_BIN" '+%Y-%m-%d %H:%M UTC'))"
fi
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta nproc "$(nproc)"
meta cpu "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta kernel "$(uname -srm)"
meta memory "$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
meta os "$(. /etc/os-release && echo "$PRETTY_NAME")"
meta postgres "$("$PGBIN/postgres" --version)"
meta pgbench "$("$PGBIN/pgbench" --version)"
meta pgbouncer "$("$PGBOUNCER" --version | head -1)"
meta pggat "$pggat_version"
meta targets "${TARGETS[*]}"
meta duration "${DURATION} s per run (warm-up ${WARMUP} s per target, not counted)"
meta reps "$REPS"
meta pool "$POOL server connections per pooler (PgBouncer default_pool_size=min_pool_size; pggat min_connections=max_connections)"
meta scale "$SCALE (pgbench -i -s $SCALE)"
meta threads "pgbench -j $THREADS"
meta pggat_mode "pool basic $PGGAT_MODE"
meta fd_limit "ulimit -n $FD_LIMIT for both poolers (hard limit $FD_HARD)"
meta idle_counts "$IDLE_COUNTS"
meta postgres_settings "$PG_SETTINGS"
meta auth "SCRAM-SHA-256 for every client (pgbench to each target; poolers check a stored verifier), poolers log in to PostgreSQL with the password"
meta command "$INVOCATION   # from $PWD"

if [ "${HOLD:-0}" = 1 ]; then
  log "HOLD=1: PGPASSWORD=$BENCH_PASSWORD, user $BENCH_USER, database $BENCH_DB, host 127.0.0.1"
  log "  direct port $PG_PORT, PgBouncer port $PGB_PORT (pid $PGB_PID), pggat port ${PGGAT_PORT} (pid ${PGGAT_PID:-none})"
  log "  Ctrl-C to stop"
  wait
fi

# ---------------------------------------------------------------------------------------------------
# Workloads.

WL_NAMES=()
declare -A WL_CLIENTS WL_ARGS
add_wl() { # name clients description pgbench-args
  [[ "$1" =~ $WORKLOADS ]] || return 0
  WL_NAMES+=("$1")
  WL_CLIENTS[$1]=$2
  WL_ARGS[$1]=$4
  printf '%s\t%s\t%s\n' "$1" "$3" "pgbench -n -j $THREADS -T $DURATION -c $2 $4" >>"$WORK/workloads.tsv"
}
for c in 8 32 128; do add_wl "select-simple-$c" "$c" "select-only, simple protocol, $c clients" "-S -M simple"; done
for c in 8 32 128; do add_wl "select-prepared-$c" "$c" "select-only, prepared statements, $c clients" "-S -M prepared"; done
add_wl tpcb-simple-32 32 "TPC-B-like (built-in script), simple protocol, 32 clients" "-M simple"
add_wl churn-32 32 "connection churn: select-only, a new connection per transaction (-C), 32 clients" "-S -C -M simple"
[ ${#WL_NAMES[@]} -gt 0 ] || [ "$WORKLOADS" = none ] || die "WORKLOADS='$WORKLOADS' matches no workload"

# pgbench's own pre-run vacuum, done directly as superuser so no target pays for it.
reset_tpcb() {
  su_psql -d "$BENCH_DB" -c 'VACUUM pgbench_branches' -c 'VACUUM pgbench_tellers' \
    -c 'TRUNCATE pgbench_history' >/dev/null
}

pgbench_run() { # target clients outfile args...
  local target=$1 clients=$2 out=$3
  shift 3
  # shellcheck disable=SC2086
  "$PGBIN/pgbench" -n -j "$THREADS" -c "$clients" "$@" -h 127.0.0.1 -p "$(port_of "$target")" \
    -U "$BENCH_USER" "$BENCH_DB" >"$out" 2>&1
}

log "warm-up: ${WARMUP} s of select-only at 32 clients per target"
for t in "${TARGETS[@]}"; do
  pgbench_run "$t" 32 "$WORK/out/warmup-$t.txt" -T "$WARMUP" -S -M simple ||
    { tail -5 "$WORK/out/warmup-$t.txt" >&2; log "warm-up against $t failed (continuing)"; }
done

n_targets=${#TARGETS[@]}
for wl in "${WL_NAMES[@]}"; do
  for rep in $(seq "$REPS"); do
    for k in $(seq 0 $((n_targets - 1))); do
      t=${TARGETS[$(((rep - 1 + k) % n_targets))]}
      [[ $wl == tpcb-* ]] && reset_tpcb
      out="$WORK/out/$wl-$rep-$t.txt"
      pid=$(pid_of "$t")
      t0=""
      if [ -n "$pid" ]; then
        kill -0 "$pid" 2>/dev/null || die "$t (pid $pid) is no longer running"
        t0=$(H cputicks "$pid")
      fi
      log "$wl rep $rep/$REPS -> $t"
      rc=0
      # shellcheck disable=SC2086
      pgbench_run "$t" "${WL_CLIENTS[$wl]}" "$out" -T "$DURATION" ${WL_ARGS[$wl]} || rc=$?
      dticks=-
      if [ -n "$pid" ]; then
        kill -0 "$pid" 2>/dev/null || { tail -20 "$out" >&2; die "$t died during $wl"; }
        dticks=$(($(H cputicks "$pid") - t0))
      fi
      if [ "$rc" -ne 0 ]; then
        log "pgbench exited $rc; its first error and last lines:"
        { grep -m1 -E 'error|aborted' "$out" || true; grep -v '^$' "$out" | tail -3; } | cut -c1-200 |
          sed 's/^/   | /' >&2
      fi
      H record "$out" "$wl" "$rep" "$t" "${WL_CLIENTS[$wl]}" "$rc" "$dticks" >>"$WORK/runs.tsv"
    done
  done
done

# ---------------------------------------------------------------------------------------------------
# Idle client memory.

for t in "${TARGETS[@]}"; do
  [ "$t" = direct ] && continue
  for n in $IDLE_COUNTS; do
    log "idle clients: $n on $t"
    rc=0
    python3 "$BENCH_DIR/idle_clients.py" --port "$(port_of "$t")" --user "$BENCH_USER" \
      --database "$BENCH_DB" --count "$n" --pid "$(pid_of "$t")" --label "$t" \
      >>"$WORK/mem.jsonl" || rc=$?
    [ "$rc" -eq 0 ] || log "not every idle client stayed connected on $t (see the report)"
    tail -1 "$WORK/mem.jsonl" >&2
  done
done

# ---------------------------------------------------------------------------------------------------
# Report.

meta note "TPS is pgbench's figure without initial connection time; with -C (churn) pgbench prints only the one including reconnection times, which is the point of that workload."
meta note "Pooler CPU µs/txn = (utime+stime of the pooler process, all threads, from /proc/PID/stat) over the run / transactions processed. Clock-tick resolution: $(getconf CLK_TCK) Hz."
meta note "pgbench counts only serialization/deadlock failures as 'failed transactions'; any other error (e.g. a prepared statement missing on a transaction-pooled server) aborts the client instead: see 'aborted clients' and the ⚠ marks."
meta note "PgBouncer $("$PGBOUNCER" --version | head -1 | awk '{print $2}') has no prepared-statement support in transaction mode (max_prepared_statements arrived in 1.21), so -M prepared through it is expected to abort clients."
meta note "The TPC-B tables are vacuumed and pgbench_history truncated directly before every TPC-B run (pgbench's own pre-run vacuum, done outside the measurement)."

mkdir -p "$RESULTS_DIR"
H report "$WORK" >"$WORK/report.md"
cp "$WORK/report.md" "$RESULTS_DIR/latest.md"
cat "$WORK/report.md"
log "report written to $RESULTS_DIR/latest.md"

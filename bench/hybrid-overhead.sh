#!/usr/bin/env bash
# pggat overhead of a hybrid pool (recording, classification) vs a basic transaction pool,
# both over the same PostgreSQL (the hybrid pool's replica is the primary itself, so no 25006 ever
# happens and only pggat's own work differs), and direct. pgbench, interleaved, 3 reps.
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
D=/tmp/hyb-bench; rm -rf $D; mkdir -p $D; chown postgres $D
P=55432; G=55433
su postgres -c "$BIN/initdb -D $D/data -A trust >/dev/null"
su postgres -c "$BIN/pg_ctl -D $D/data -l $D/log -o '-p $P -k $D -c max_connections=200 -c shared_buffers=128MB' -w start >/dev/null"
trap 'su postgres -c "$BIN/pg_ctl -D $D/data -m fast stop" >/dev/null; kill $PG 2>/dev/null || true' EXIT
su postgres -c "$BIN/pgbench -q -i -s 5 -h $D -p $P postgres" >/dev/null 2>&1
cat > $D/Gatfile <<G
127.0.0.1:$G {
    trust
    pool /basic {
        address 127.0.0.1:$P
        username postgres
        database postgres
        max_connections 8
        pool basic transaction
    }
    pool /hyb {
        address 127.0.0.1:$P
        replica 127.0.0.1:$P
        username postgres
        database postgres
        max_connections 8
        pool hybrid
    }
}
G
PGGAT_LOG=warn "$(cd "$(dirname "$0")/.." && pwd)/target/release/pggat" run --config $D/Gatfile & PG=$!
sleep 1
run() { # target db mode script
  "$BIN/pgbench" -h 127.0.0.1 -p $1 -U postgres -d $2 -M $3 $4 -c 16 -j 2 -T 5 -n 2>/dev/null | awk '/^tps/ {print int($3)}'
}
for w in "-S:prepared" "-S:simple" ":simple"; do
  s=${w%%:*}; m=${w##*:}
  for rep in 1 2 3; do
    d=$(run $P postgres $m "$s"); b=$(run $G basic $m "$s"); h=$(run $G hyb $m "$s")
    echo "workload='${s:-tpcb}' mode=$m rep=$rep direct=$d basic=$b hybrid=$h"
  done
done

#!/usr/bin/env bash
# Installs the client drivers used by tests/drivers/*_check.* into a cache dir.
#   DRIVERS_DIR (default: $HOME/.cache/pggat-drivers)
#     $DRIVERS_DIR/venv   Python venv with asyncpg + psycopg 3 (requirements.txt)
#     $DRIVERS_DIR/node   npm prefix with pg + postgres       (package.json)
# Idempotent: each half is skipped when its pinned spec is unchanged since the
# last successful install and the modules still import.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DRIVERS_DIR="${DRIVERS_DIR:-$HOME/.cache/pggat-drivers}"
VENV="$DRIVERS_DIR/venv"
NODE_PREFIX="$DRIVERS_DIR/node"
PYTHON="${PYTHON:-python3}"

mkdir -p "$DRIVERS_DIR"

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---- Python ---------------------------------------------------------------
py_stamp="$VENV/.pggat-stamp"
py_want="$(hash_of "$HERE/requirements.txt")"
if [[ -f "$py_stamp" && "$(cat "$py_stamp")" == "$py_want" ]] \
   && "$VENV/bin/python" -c 'import asyncpg, psycopg' 2>/dev/null; then
  echo "python: up to date ($VENV)"
else
  echo "python: installing into $VENV"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$HERE/requirements.txt"
  "$VENV/bin/python" -c 'import asyncpg, psycopg; print("python: asyncpg", asyncpg.__version__, "psycopg", psycopg.__version__, psycopg.pq.__impl__)'
  echo "$py_want" > "$py_stamp"
fi

# ---- Node -----------------------------------------------------------------
node_stamp="$NODE_PREFIX/.pggat-stamp"
node_want="$(hash_of "$HERE/package.json" $( [[ -f "$HERE/package-lock.json" ]] && echo "$HERE/package-lock.json"))"
if [[ -f "$node_stamp" && "$(cat "$node_stamp")" == "$node_want" ]] \
   && NODE_PATH="$NODE_PREFIX/node_modules" node -e 'require("pg"); require.resolve("postgres")' 2>/dev/null; then
  echo "node: up to date ($NODE_PREFIX)"
else
  echo "node: installing into $NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  cp "$HERE/package.json" "$NODE_PREFIX/package.json"
  if [[ -f "$HERE/package-lock.json" ]]; then
    cp "$HERE/package-lock.json" "$NODE_PREFIX/package-lock.json"
    npm ci --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error
  else
    npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error
  fi
  echo "$node_want" > "$node_stamp"
fi

cat <<MSG
drivers ready in $DRIVERS_DIR:
  python venv: $VENV  (run: $VENV/bin/python tests/drivers/asyncpg_check.py | psycopg_check.py)
  node prefix: $NODE_PREFIX/node_modules  (run: node tests/drivers/node_pg_check.js | postgresjs_check.mjs;
               the node checks locate it themselves via DRIVERS_DIR)
MSG

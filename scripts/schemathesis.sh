#!/usr/bin/env bash
# Fuzzes a running `liveops serve` against its own /openapi.json with schemathesis: no answer
# may be a 5xx, and every answer must have a documented status, content type and body schema.
#
#   scripts/schemathesis.sh [path/to/liveops]
#
# Without an argument it builds the debug binary. The server runs on a free loopback port with
# a fresh temporary DATA_DIR and a random ADMIN_TOKEN (sent with every request, so the admin
# API is fuzzed too), and is stopped at the end. Bounds: SCHEMATHESIS_MAX_EXAMPLES cases per
# operation and phase (default 10), the whole run at most SCHEMATHESIS_TIMEOUT seconds
# (default 300). SCHEMATHESIS_SEED (default 1) makes a run reproducible. schemathesis is
# installed, pinned, into a virtualenv under ~/.cache/liveops-ci the first time.
#
# The signed endpoints (/events, /events/batch, /rewards/claim) answer schemathesis's unsigned
# requests with 401, so here they are checked for their refusals; tests/api/openapi.rs checks
# their signed answers. /leaderboard/stream is left out: an event stream never ends, which a
# request-per-case fuzzer cannot read.
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
venv="${SCHEMATHESIS_VENV:-$HOME/.cache/liveops-ci/schemathesis-$version}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    rm -rf "$venv" && python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

bin="${1:-}"
if [ -z "$bin" ]; then
  cargo build --locked --quiet -p liveops --bin liveops
  bin="${CARGO_TARGET_DIR:-target}/debug/liveops"
fi

data_dir=$(mktemp -d)
log="$data_dir/server.log"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="schemathesis-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
base="http://127.0.0.1:$port"

server=
stop() {
  if [ -n "$server" ]; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$data_dir"
}
trap stop EXIT

# No per-IP or per-player limits: the fuzzer's requests all come from one address, and
# reaching the handlers is the point. Everything else is as a fresh install has it.
env PORT="$port" BIND_ADDR=127.0.0.1 DATA_DIR="$data_dir" ADMIN_TOKEN="$token" \
  RATE_LIMIT_MAX=0 FLOOD_MAX_PER_SEC=0 LOG_LEVEL=warn \
  "$bin" serve >"$log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "liveops serve exited before answering:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.2
done

# From the scratch directory: schemathesis keeps a cache of its findings in the working directory.
status=0
cd "$data_dir"
timeout --signal=INT "${SCHEMATHESIS_TIMEOUT:-300}" \
  "$venv/bin/schemathesis" run "$base/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-10}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --workers 1 \
  --request-timeout 10 \
  --exclude-path /leaderboard/stream \
  --header "Authorization: Bearer $token" \
  --no-color || status=$?

if grep -q '"level":"ERROR"' "$log"; then
  echo "--- server errors logged during the run:" >&2
  grep '"level":"ERROR"' "$log" | head -20 >&2
fi
if [ "$status" -eq 124 ]; then
  echo "schemathesis did not finish within ${SCHEMATHESIS_TIMEOUT:-300} s" >&2
fi
exit "$status"

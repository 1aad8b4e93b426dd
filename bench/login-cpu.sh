#!/usr/bin/env bash
# Event-loop CPU per login (issue 9): starts Gatehouse on core 0 (SQLite, a temp dir), runs a
# login flood with wrk on core 1 (8 connections), and reads each thread's CPU time from
# /proc/<pid>/task/*/stat before and after the measured window. Prints, per busy thread, its CPU
# milliseconds per login: the main thread (event loop) and the password verifier.
#   cold: the real argon2id (m=19 MiB): every login's event-loop work runs on caches the hash swept.
#   hot:  the same server after the user's hash is replaced by a cheap one (m=64 KiB, t=1), so the
#         code runs hot and warm: the floor of the event-loop work per login.
# Usage: bash bench/login-cpu.sh [seconds=8]   (needs wrk and taskset; npm run build:server first)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-8}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
pass='Bench-Pass-123!'
echo '{"server":{"logLevel":"warn"},"limits":{"default":{"rate":1000000000,"windowSec":3600,"concurrency":100000}}}' > "$dir/cfg.json"
cat > "$dir/login.lua" <<'EOF'
wrk.method = "POST"
wrk.body = "username=admin&password=Bench-Pass-123%21&token=true"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
EOF
pid=
start() {
  PORT=$port HOST=127.0.0.1 NODE_ENV=production GATEHOUSE_DATA_DIR="$dir/data" GATEHOUSE_CONFIG="$dir/cfg.json" \
    GATEHOUSE_ADMIN_PASSWORD="$pass" taskset -c 0 node "$root/bin/gatehouse.mjs" serve > "$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$port/health/ready" > /dev/null && return; sleep 0.2; done
  echo "gatehouse did not start; see $dir/server.log" >&2
  exit 1
}
stop() { [ -n "$pid" ] && kill "$pid" 2> /dev/null && wait "$pid" 2> /dev/null || true; pid=; }
trap 'stop; rm -rf "$dir"' EXIT
ticks() { for t in /proc/$pid/task/*; do echo "$(basename "$t") $(awk '{print $14+$15}' "$t/stat")"; done | sort; }
measure() {
  taskset -c 1 wrk -t1 -c8 -d3s -s "$dir/login.lua" "http://127.0.0.1:$port/auth" > /dev/null
  ticks > "$dir/before"
  taskset -c 1 wrk -t1 -c8 -d"${secs}s" -s "$dir/login.lua" "http://127.0.0.1:$port/auth" > "$dir/wrk"
  ticks > "$dir/after"
  local n hz main
  n=$(awk '/requests in/ {print $1}' "$dir/wrk")
  hz=$(getconf CLK_TCK)
  main=$pid
  echo "$1: $(awk '/Requests\/sec/ {print $2}' "$dir/wrk") logins/s ($n in ${secs}s)"
  join "$dir/before" "$dir/after" | awk -v n="$n" -v hz="$hz" -v main="$main" '{ d = $3 - $2; if (d * 1000 / hz / n >= 0.02) printf "  %-9s %7.3f ms CPU per login\n", ($1 == main ? "event loop" : "thread " $1), d * 1000 / hz / n }'
}
start
measure cold
stop
node -e "
const { hash } = require('$root/node_modules/@node-rs/argon2');
const Database = require('$root/node_modules/better-sqlite3');
hash('$pass', { algorithm: 2, memoryCost: 64, timeCost: 1, parallelism: 1 }).then((h) => {
  new Database('$dir/data/gatehouse.db').prepare(\"update users set password_hash = ? where username = 'admin'\").run(h);
});"
start
measure hot

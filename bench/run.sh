#!/usr/bin/env bash
# One command to reproduce the figures in docs/performance.md:
#
#   bench/run.sh            the interleaved suite: every scenario against every
#                           peer (wsactor, gorillahub, node, bun), peers taking
#                           turns, ROUNDS rounds (default 5); medians and ratios
#                           are printed and saved under bench/results/
#   bench/run.sh micro      the Go micro-benchmarks of the hot paths (-benchmem)
#   bench/run.sh idle-max   as many idle connections as this machine allows
#                           (asks for 100,000; RLIMIT_NOFILE caps it)
#   bench/run.sh metrics    what metrics cost: wsactor against itself with its
#                           collectors registered and scraped every second
#                           (peer wsactor-metrics), fan-out and echo, ROUNDS
#                           rounds (default 9)
#   bench/run.sh smoke      correctness only, wsactor alone, tiny sizes (CI)
#
# Environment: ROUNDS (suite rounds), PEERS (comma-separated, default: every
# peer that installs here), SCENARIOS (default: all presets).
# Load goes to 127.0.0.1 only; every run is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
mode="${1:-suite}"

mkdir -p bench/bin
go build -o bench/bin/wsbench ./bench/wsbench
go build -o bench/bin/wsactor ./bench/servers/wsactor
go build -o bench/bin/gorillahub ./bench/servers/gorillahub

case "$mode" in
smoke)
  exec bench/bin/wsbench -suite -quick -rounds 1 -peers wsactor \
    -scenarios fanout,fanout1k,echo,echo1,idle,deflate,upgrade -json
  ;;
micro)
  go test -run '^$' -bench 'ConnSend|FrameDeflate' -benchmem -count "${COUNT:-3}" ./transport
  go test -run '^$' -bench Broadcast -benchmem -count "${COUNT:-1}" -timeout 30m ./room
  exit 0
  ;;
idle-max)
  exec bench/bin/wsbench -server "${PEER:-wsactor}" -scenario idle -conns 100000 -rooms 100 \
    -src-ips 4 -dial-concurrency 64 -settle 3s
  ;;
metrics)
  export ROUNDS="${ROUNDS:-9}" PEERS="${PEERS:-wsactor,wsactor-metrics}" SCENARIOS="${SCENARIOS:-fanout,echo}"
  ;;
suite) ;;
*)
  echo "usage: bench/run.sh [suite|micro|idle-max|metrics|smoke]" >&2
  exit 2
  ;;
esac

peers="wsactor,gorillahub"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  npm ci --prefix bench/servers/node --no-audit --no-fund >/dev/null
  peers="$peers,node"
else
  echo "node/npm not found: skipping the Node ws peer" >&2
fi
if command -v npm >/dev/null 2>&1 && npm ci --prefix bench/servers/bun --no-audit --no-fund >/dev/null 2>&1 &&
  bench/servers/bun/node_modules/bun/bin/bun.exe --version >/dev/null 2>&1; then
  peers="$peers,bun"
else
  echo "the npm package bun did not install or its binary does not run: skipping the Bun peer" >&2
fi
peers="${PEERS:-$peers}"

mkdir -p bench/results
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
{
  echo "# wsbench suite $stamp"
  echo "# $(uname -srm); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# go: $(go version | cut -d' ' -f3); node: $(node --version 2>/dev/null || echo none); bun: $(bench/servers/bun/node_modules/bun/bin/bun.exe --version 2>/dev/null || echo none)"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "bench/results/$stamp.md"
set +e
bench/bin/wsbench -suite -rounds "${ROUNDS:-5}" -peers "$peers" \
  -scenarios "${SCENARIOS:-fanout,fanout1k,fanout1k50,fanout5k,echo,echo1,idle,deflate,upgrade}" \
  -out "bench/results/$stamp.jsonl" | tee -a "bench/results/$stamp.log" | grep -v '^{' | sed -n '/^# Suite/,$p' | tee -a "bench/results/$stamp.md"
code=${PIPESTATUS[0]}
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "bench/results/$stamp.md"
echo "results: bench/results/$stamp.{md,jsonl,log}"
exit "$code"

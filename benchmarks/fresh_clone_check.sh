#!/usr/bin/env bash
# Issue 18's check of the numba cache race: from a fresh clone, ROUNDS times with an empty compile
# cache each time, the demo, a second demo and the test suite must run without a crash.
#
#   bash benchmarks/fresh_clone_check.sh [BRANCH] [ROUNDS]     (log: $WORK/fresh_clone_check.log)
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
BR=${1:-main}
ROUNDS=${2:-3}
WORK=${WORK:-/tmp/micfp-fresh}
mkdir -p "$WORK"
LOG=$WORK/fresh_clone_check.log
: > "$LOG"
for i in $(seq 1 "$ROUNDS"); do
  D=$WORK/round$i
  rm -rf "$D"
  git clone -q -b "$BR" "$REPO" "$D"
  cd "$D"
  export XDG_CACHE_HOME=$D/.xdg-cache   # micfp's numba cache lives here: empty for this round
  python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]" >/dev/null 2>&1
  echo "round $i: install rc=$?" >> "$LOG"
  for k in 1 2; do
    s=$(date +%s); .venv/bin/micfp demo --scale tiny --out "$D/demo$k" > "$D/demo$k.log" 2>&1
    echo "round $i: demo $k rc=$? $(( $(date +%s) - s )) s" >> "$LOG"
  done
  s=$(date +%s); .venv/bin/python -m pytest -q -p no:cacheprovider > "$D/tests.log" 2>&1
  echo "round $i: tests rc=$? $(( $(date +%s) - s )) s: $(tail -1 "$D/tests.log")" >> "$LOG"
  grep -l "Segmentation fault\|signal 11\|core dumped" "$D"/*.log >> "$LOG" 2>/dev/null
done
echo done >> "$LOG"
cat "$LOG"

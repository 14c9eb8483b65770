#!/bin/sh
# The suite on a busy machine (issue 16): two CPU-bound processes run beside `make test`'s pytest, RUNS
# times in a row (default 3); the first failing run stops it. `make test-loaded [RUNS=N]` calls this.
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUNS=${RUNS:-3}
WORKERS=${PYTEST_WORKERS:-4}

hogs=""
stop_hogs() {
    for pid in $hogs; do kill "$pid" 2>/dev/null || true; done
}
trap stop_hogs EXIT INT TERM
for _ in 1 2; do
    sh -c 'while :; do :; done' &
    hogs="$hogs $!"
done

run=1
while [ "$run" -le "$RUNS" ]; do
    echo "== loaded run $run of $RUNS (two CPU hogs:$hogs), $(date -u +%H:%M:%S)"
    started=$(date +%s)
    "$BIN/pytest" -q -p no:cacheprovider -n "$WORKERS" --dist loadfile
    echo "== loaded run $run passed in $(( $(date +%s) - started )) s"
    run=$((run + 1))
done

#!/usr/bin/env bash
# Stop the influxd started by scripts/influxdb-up.sh, via the pid file in its data dir.
# Idempotent: no pid file or a dead pid is not an error.
#
# Environment: INFLUXDB_DATA_DIR, LIFELINE_CACHE_DIR (as in scripts/influxdb-up.sh),
#              INFLUXDB_STOP_TIMEOUT (30 s before SIGKILL).
set -euo pipefail

CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
DATA_DIR="${INFLUXDB_DATA_DIR:-$CACHE_ROOT/influxdb-data}"
PID_FILE="$DATA_DIR/influxd.pid"
STOP_TIMEOUT="${INFLUXDB_STOP_TIMEOUT:-30}"

say() { echo "[influxdb-down] $*"; }

if [ ! -f "$PID_FILE" ]; then
  say "no pid file ($PID_FILE): nothing to stop"
  exit 0
fi
pid="$(cat "$PID_FILE" 2>/dev/null || true)"
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  say "influxd (pid ${pid:-?}) is not running; removing stale pid file"
  rm -f "$PID_FILE"
  exit 0
fi
if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q influxd; then
  say "pid $pid is not influxd; removing stale pid file without killing it"
  rm -f "$PID_FILE"
  exit 0
fi

say "stopping influxd (pid $pid)"
kill -TERM "$pid" 2>/dev/null || true
waited=0
while kill -0 "$pid" 2>/dev/null; do
  if [ "$waited" -ge $((STOP_TIMEOUT * 10)) ]; then
    say "still running after ${STOP_TIMEOUT}s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
    break
  fi
  sleep 0.1
  waited=$((waited + 1))
done
rm -f "$PID_FILE"
say "stopped"

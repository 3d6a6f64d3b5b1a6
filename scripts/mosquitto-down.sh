#!/usr/bin/env bash
# Stop the mosquitto started by scripts/mosquitto-up.sh (via the pid file in its runtime dir).
# Idempotent: no pid file or a dead pid is not an error. SIGTERM makes mosquitto write its
# persistence database, so queued messages and sessions survive into the next start.
#
# Environment: MOSQUITTO_DIR, LIFELINE_CACHE_DIR (as in scripts/mosquitto-up.sh),
#              MOSQUITTO_STOP_TIMEOUT (10 s before SIGKILL).
set -euo pipefail

CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
RUN_DIR="${MOSQUITTO_DIR:-$CACHE_ROOT/mosquitto}"
PID_FILE="$RUN_DIR/mosquitto.pid"
STOP_TIMEOUT="${MOSQUITTO_STOP_TIMEOUT:-10}"

say() { echo "[mosquitto-down] $*"; }

if [ ! -f "$PID_FILE" ]; then
  say "no pid file ($PID_FILE): nothing to stop"
  exit 0
fi
pid="$(cat "$PID_FILE" 2>/dev/null || true)"
if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
  say "mosquitto (pid ${pid:-?}) is not running; removing stale pid file"
  rm -f "$PID_FILE"
  exit 0
fi
if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q mosquitto; then
  say "pid $pid is not mosquitto; removing stale pid file without killing it"
  rm -f "$PID_FILE"
  exit 0
fi

say "stopping mosquitto (pid $pid)"
kill -TERM "$pid" 2>/dev/null || true
waited=0
while kill -0 "$pid" 2>/dev/null; do
  if [ "$waited" -ge $((STOP_TIMEOUT * 20)) ]; then
    say "still running after ${STOP_TIMEOUT}s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
    break
  fi
  sleep 0.05
  waited=$((waited + 1))
done
rm -f "$PID_FILE"
say "stopped"

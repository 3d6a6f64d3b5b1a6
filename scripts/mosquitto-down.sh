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

# shellcheck source=lib/stop-pidfile.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/stop-pidfile.sh"
stop_pidfile mosquitto "$PID_FILE" "$STOP_TIMEOUT"

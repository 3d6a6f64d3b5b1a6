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

# shellcheck source=lib/stop-pidfile.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/stop-pidfile.sh"
stop_pidfile influxd "$PID_FILE" "$STOP_TIMEOUT"

#!/usr/bin/env bash
# Stop the Kafka broker started by scripts/kafka-up.sh, via the pid file in its data dir.
# Idempotent: no pid file or a dead pid is not an error. Kafka shuts down cleanly on SIGTERM (its data
# stays in the data dir for the next scripts/kafka-up.sh).
#
# Environment: KAFKA_DATA_DIR, LIFELINE_CACHE_DIR (as in scripts/kafka-up.sh),
#              KAFKA_STOP_TIMEOUT (30 s before SIGKILL).
set -euo pipefail

CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
DATA_DIR="${KAFKA_DATA_DIR:-$CACHE_ROOT/kafka-data}"
PID_FILE="$DATA_DIR/kafka.pid"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

# shellcheck source=lib/stop-pidfile.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/stop-pidfile.sh"
stop_pidfile kafka "$PID_FILE" "$STOP_TIMEOUT"

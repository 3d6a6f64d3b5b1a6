#!/usr/bin/env bash
# One command from a fresh checkout to a running sentinel: installs into a cached virtualenv and runs
# `sentinel demo` (embedded MQTT broker unless Mosquitto is installed; SQLite store). Args pass through.
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$(SETUP_EXTRAS="" "$REPO_DIR/scripts/setup.sh" | tail -n 1)"
exec "$BIN/sentinel" demo "$@"

#!/usr/bin/env bash
# Start a local Mosquitto broker for Lifeline Sentinel (dev, tests, demo): never the system one on 1883.
#
# Idempotent:
#   - installs Debian's mosquitto package only if there is no mosquitto binary
#   - if our broker (pid file in the runtime dir) is running and accepts connections: does nothing
#   - otherwise writes the runtime dir from deploy/mosquitto/ and starts `mosquitto -c CONF -d`
#     in the background, then waits until the port accepts TCP connections
#
# Runtime dir ($MOSQUITTO_DIR, default ~/.cache/lifeline-sentinel/mosquitto):
#   mosquitto.conf  deploy/mosquitto/mosquitto.conf with listener, persistence_location, password_file,
#                   acl_file and log_dest rewritten, plus pid_file and user appended
#   acl             copy of deploy/mosquitto/acl
#   passwd          written by scripts/mosquitto-passwd.sh (dev users sentinel/sentinel-dev and
#                   device/device-dev unless MQTT_*_USER / MQTT_*_PASSWORD say otherwise)
#   data/           persistence (mosquitto.db): sessions and queued messages survive restarts
#   mosquitto.pid, mosquitto.log
#
# Environment (all optional):
#   MQTT_PORT (18830)  MQTT_BIND (127.0.0.1)  MOSQUITTO_DIR  LIFELINE_CACHE_DIR
#   MOSQUITTO_BIN (mosquitto on PATH or /usr/sbin/mosquitto)  MOSQUITTO_START_TIMEOUT (15 s)
#   MQTT_SENTINEL_USER/PASSWORD, MQTT_DEVICE_USER/PASSWORD (see scripts/mosquitto-passwd.sh)
#
# Stop it with scripts/mosquitto-down.sh (same MOSQUITTO_DIR).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
TEMPLATE_DIR="$REPO_DIR/deploy/mosquitto"
CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
RUN_DIR="${MOSQUITTO_DIR:-$CACHE_ROOT/mosquitto}"
PORT="${MQTT_PORT:-18830}"
BIND="${MQTT_BIND:-127.0.0.1}"
START_TIMEOUT="${MOSQUITTO_START_TIMEOUT:-15}"
CONF="$RUN_DIR/mosquitto.conf"
PID_FILE="$RUN_DIR/mosquitto.pid"
LOG_FILE="$RUN_DIR/mosquitto.log"

say() { echo "[mosquitto-up] $*"; }
die() {
  echo "[mosquitto-up] ERROR: $*" >&2
  if [ -f "$LOG_FILE" ]; then
    echo "----- last 30 lines of $LOG_FILE -----" >&2
    tail -n 30 "$LOG_FILE" >&2 || true
    echo "----- end of log tail -----" >&2
  fi
  exit 1
}

find_bin() {
  if [ -n "${MOSQUITTO_BIN:-}" ]; then echo "$MOSQUITTO_BIN"; return 0; fi
  if command -v mosquitto >/dev/null 2>&1; then command -v mosquitto; return 0; fi
  if [ -x /usr/sbin/mosquitto ]; then echo /usr/sbin/mosquitto; return 0; fi
  return 1
}

install_mosquitto() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "mosquitto is not installed and neither root nor sudo is available"
    sudo="sudo"
  fi
  say "installing Debian's mosquitto package"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y mosquitto || { $sudo apt-get update && $sudo apt-get install -y mosquitto; } ||
    die "apt-get install mosquitto failed"
}

port_open() { (exec 3<>"/dev/tcp/$BIND/$PORT") 2>/dev/null; }

pid_alive() {
  [ -f "$PID_FILE" ] || return 1
  local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q mosquitto
}

# Rewrite `key ...` (exactly one line starting with it) to `key VALUE` in the runtime conf.
set_key() {
  local key="$1" value="$2" n
  n="$(grep -c "^$key " "$CONF.tmp" || true)"
  [ "$n" = 1 ] || die "$TEMPLATE_DIR/mosquitto.conf must have exactly one line starting with '$key ' (found $n)"
  local esc="${value//\\/\\\\}"; esc="${esc//|/\\|}"; esc="${esc//&/\\&}"
  sed -i "s|^$key .*|$key $esc|" "$CONF.tmp"
}

write_runtime_dir() {
  mkdir -p "$RUN_DIR/data"
  cp "$TEMPLATE_DIR/mosquitto.conf" "$CONF.tmp"
  set_key listener "$PORT $BIND"
  set_key persistence_location "$RUN_DIR/data/"
  set_key password_file "$RUN_DIR/passwd"
  set_key acl_file "$RUN_DIR/acl"
  set_key log_dest "file $LOG_FILE"
  {
    echo
    echo "# ---- appended by scripts/mosquitto-up.sh --------------------------------------------------"
    echo "pid_file $PID_FILE"
    echo "user $(id -un)"
  } >>"$CONF.tmp"
  mv -f "$CONF.tmp" "$CONF"
  cp "$TEMPLATE_DIR/acl" "$RUN_DIR/acl.tmp" && mv -f "$RUN_DIR/acl.tmp" "$RUN_DIR/acl"
  bash "$SCRIPT_DIR/mosquitto-passwd.sh" "$RUN_DIR/passwd" >/dev/null
}

# ---- already running? ------------------------------------------------------------------------------
if pid_alive && port_open; then
  say "already running (pid $(cat "$PID_FILE")) on $BIND:$PORT, runtime dir $RUN_DIR"
  exit 0
fi
if pid_alive; then
  die "mosquitto (pid $(cat "$PID_FILE")) from $RUN_DIR runs but $BIND:$PORT does not accept connections (another MQTT_PORT?); stop it with scripts/mosquitto-down.sh"
fi
rm -f "$PID_FILE"
if port_open; then
  die "something else listens on $BIND:$PORT; choose another MQTT_PORT"
fi

BIN="$(find_bin)" || { install_mosquitto; BIN="$(find_bin)" || die "no mosquitto binary after installing"; }

write_runtime_dir
say "starting $BIN on $BIND:$PORT (runtime dir $RUN_DIR, log $LOG_FILE)"
echo "$(date -u +%FT%TZ) mosquitto-up: starting on $BIND:$PORT" >>"$LOG_FILE"
"$BIN" -c "$CONF" -d 2>>"$LOG_FILE" || die "mosquitto refused to start (configuration error?)"

deadline=$(( $(date +%s) + START_TIMEOUT ))
until pid_alive && port_open; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    die "mosquitto did not accept connections on $BIND:$PORT within ${START_TIMEOUT}s"
  fi
  sleep 0.05
done
say "ready: mqtt://$BIND:$PORT (pid $(cat "$PID_FILE"))"

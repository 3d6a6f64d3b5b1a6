#!/usr/bin/env bash
# Start a local InfluxDB 2.x OSS server (influxd, built by scripts/influxdb-build.sh) and set it up.
#
# Idempotent:
#   - builds influxd if the cached binary is missing (scripts/influxdb-build.sh)
#   - if a server already answers on 127.0.0.1:$INFLUXDB_PORT and is set up, starts nothing
#   - otherwise starts influxd from its own data dir and waits for GET /health
#   - if the server is not set up yet, POSTs /api/v2/setup (org/bucket/user, fixed dev token)
#   - writes an env file with INFLUXDB_URL, INFLUXDB_ORG, INFLUXDB_BUCKET, INFLUXDB_TOKEN
#
# Environment (all optional):
#   INFLUXDB_PORT           (8086)     HTTP port, bound on 127.0.0.1 only
#   INFLUXDB_DATA_DIR       (~/.cache/lifeline-sentinel/influxdb-data) bolt/sqlite/engine, pid, log
#   INFLUXDB_ENV_FILE       (~/.cache/lifeline-sentinel/influxdb.env)
#   INFLUXDB_ORG            (sentinel)
#   INFLUXDB_BUCKET         (sentinel)
#   INFLUXDB_USERNAME       (sentinel)
#   INFLUXDB_PASSWORD       (sentinel-dev-password, >= 8 chars)
#   INFLUXDB_TOKEN          (sentinel-dev-token)  operator token given at setup
#   INFLUXDB_START_TIMEOUT  (90)       seconds to wait for /health
#   INFLUXDB_VERSION, LIFELINE_CACHE_DIR: see scripts/influxdb-build.sh
#
# Stop it with scripts/influxdb-down.sh.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${INFLUXDB_VERSION:-v2.9.1}"
case "$VERSION" in v*) ;; *) VERSION="v$VERSION" ;; esac
CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
BIN="$CACHE_ROOT/influxdb/$VERSION/influxd"
PORT="${INFLUXDB_PORT:-8086}"
HOST=127.0.0.1
URL="http://$HOST:$PORT"
DATA_DIR="${INFLUXDB_DATA_DIR:-$CACHE_ROOT/influxdb-data}"
ENV_FILE="${INFLUXDB_ENV_FILE:-$CACHE_ROOT/influxdb.env}"
ORG="${INFLUXDB_ORG:-sentinel}"
BUCKET="${INFLUXDB_BUCKET:-sentinel}"
USERNAME="${INFLUXDB_USERNAME:-sentinel}"
PASSWORD="${INFLUXDB_PASSWORD:-sentinel-dev-password}"
TOKEN="${INFLUXDB_TOKEN:-sentinel-dev-token}"
START_TIMEOUT="${INFLUXDB_START_TIMEOUT:-90}"
PID_FILE="$DATA_DIR/influxd.pid"
LOG_FILE="$DATA_DIR/influxd.log"

say() { echo "[influxdb-up] $*"; }
die() {
  echo "[influxdb-up] ERROR: $*" >&2
  if [ -f "$LOG_FILE" ]; then
    echo "----- last 40 lines of $LOG_FILE -----" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    echo "----- end of log tail -----" >&2
  fi
  exit 1
}

[ "${#PASSWORD}" -ge 8 ] || die "INFLUXDB_PASSWORD must have at least 8 characters"
command -v curl >/dev/null 2>&1 || die "curl is needed"

# JSON string escaping for the few values we send.
json_str() {
  local s="$1"
  s="${s//\\/\\\\}"; s="${s//\"/\\\"}"
  printf '"%s"' "$s"
}

# 0 when an InfluxDB answers /health with status pass.
healthy() {
  local body
  body="$(curl -fsS --max-time 3 "$URL/health" 2>/dev/null)" || return 1
  case "$body" in *'"status"'*'"pass"'*) return 0 ;; *) return 1 ;; esac
}

# Prints "true" when setup is still allowed (fresh server), "false" when set up.
setup_allowed() {
  local body
  body="$(curl -fsS --max-time 5 "$URL/api/v2/setup")" || return 1
  case "$body" in
    *'"allowed"'*true*) echo true ;;
    *'"allowed"'*false*) echo false ;;
    *) return 1 ;;
  esac
}

pid_alive() {
  [ -f "$PID_FILE" ] || return 1
  local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q influxd
}

write_env_file() {
  mkdir -p "$(dirname "$ENV_FILE")"
  local tmp="$ENV_FILE.tmp.$$"
  cat >"$tmp" <<EOF
# Written by scripts/influxdb-up.sh: local InfluxDB 2.x dev server.
# Load in a shell with:  set -a; . "$ENV_FILE"; set +a
INFLUXDB_URL=$URL
INFLUXDB_ORG=$ORG
INFLUXDB_BUCKET=$BUCKET
INFLUXDB_TOKEN=$TOKEN
EOF
  mv -f "$tmp" "$ENV_FILE"
  say "wrote $ENV_FILE"
}

check_token() {
  local code
  code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
    -H "Authorization: Token $TOKEN" "$URL/api/v2/buckets?name=$BUCKET&org=$ORG")" || code=000
  [ "$code" = 200 ]
}

do_setup() {
  say "setting up org=$ORG bucket=$BUCKET user=$USERNAME"
  local body resp code
  body="{\"username\":$(json_str "$USERNAME"),\"password\":$(json_str "$PASSWORD"),\"org\":$(json_str "$ORG"),\"bucket\":$(json_str "$BUCKET"),\"token\":$(json_str "$TOKEN"),\"retentionPeriodSeconds\":0}"
  resp="$(mktemp)"
  code="$(curl -sS -o "$resp" -w '%{http_code}' --max-time 30 -X POST \
    -H 'Content-Type: application/json' --data "$body" "$URL/api/v2/setup")" || code=000
  if [ "$code" != 201 ]; then
    echo "[influxdb-up] setup answer (HTTP $code): $(cat "$resp")" >&2
    rm -f "$resp"
    die "POST /api/v2/setup failed"
  fi
  rm -f "$resp"
}

finish() {
  local allowed
  allowed="$(setup_allowed)" || die "GET $URL/api/v2/setup did not answer"
  if [ "$allowed" = true ]; then
    do_setup
  else
    say "already set up"
  fi
  if check_token; then
    write_env_file
  else
    die "the server at $URL is set up, but token INFLUXDB_TOKEN does not reach bucket '$BUCKET' of org '$ORG' (was it set up with another token or data dir?)"
  fi
  say "ready: $URL (org=$ORG bucket=$BUCKET)"
}

# ---- already running? ---------------------------------------------------------------------
if healthy; then
  say "a server already answers on $URL"
  finish
  exit 0
fi

# ---- build if needed ----------------------------------------------------------------------
bash "$SCRIPT_DIR/influxdb-build.sh"
[ -x "$BIN" ] || die "no influxd at $BIN after the build"

mkdir -p "$DATA_DIR/engine"

if pid_alive; then
  say "influxd (pid $(cat "$PID_FILE")) is running but not healthy yet; waiting for it"
else
  rm -f "$PID_FILE"
  if curl -s --max-time 2 -o /dev/null "$URL/" 2>/dev/null; then
    die "something else (not a healthy InfluxDB) answers on $URL; choose another INFLUXDB_PORT"
  fi
  # influxd reads any config.{json,toml,yaml,yml} in its working directory unless
  # INFLUXD_CONFIG_PATH is set: give it its own (explicit) config file in its own folder.
  CONFIG="$DATA_DIR/config.yml"
  cat >"$CONFIG" <<EOF
# Written by scripts/influxdb-up.sh; the command line repeats these and wins.
bolt-path: $DATA_DIR/influxd.bolt
engine-path: $DATA_DIR/engine
sqlite-path: $DATA_DIR/influxd.sqlite
http-bind-address: $HOST:$PORT
reporting-disabled: true
ui-disabled: true
EOF
  say "starting $BIN on $URL (data: $DATA_DIR, log: $LOG_FILE)"
  echo "===== $(date -u +%FT%TZ) influxdb-up: starting influxd $VERSION on $HOST:$PORT" >>"$LOG_FILE"
  (
    cd "$DATA_DIR"
    export INFLUXD_CONFIG_PATH="$CONFIG"
    exec nohup "$BIN" \
      --bolt-path="$DATA_DIR/influxd.bolt" \
      --engine-path="$DATA_DIR/engine" \
      --sqlite-path="$DATA_DIR/influxd.sqlite" \
      --http-bind-address="$HOST:$PORT" \
      --reporting-disabled \
      --ui-disabled
  ) </dev/null >>"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  say "influxd pid $(cat "$PID_FILE")"
fi

# ---- wait for /health ---------------------------------------------------------------------
deadline=$(( $(date +%s) + START_TIMEOUT ))
until healthy; do
  if ! pid_alive; then
    rm -f "$PID_FILE"
    die "influxd exited before $URL/health passed"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    die "timed out after ${START_TIMEOUT}s waiting for $URL/health (influxd pid $(cat "$PID_FILE") still running; stop it with scripts/influxdb-down.sh)"
  fi
  sleep 0.5
done
say "healthy: $URL/health"
finish

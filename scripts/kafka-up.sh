#!/usr/bin/env bash
# Start a local single-node Apache Kafka broker in KRaft mode (jars fetched by scripts/kafka-build.sh).
#
# Idempotent:
#   - fetches the jars if they are not cached yet (scripts/kafka-build.sh; a no-op when they are)
#   - if a broker already answers Kafka requests on 127.0.0.1:$KAFKA_PORT, starts nothing
#   - otherwise writes server.properties and log4j.properties into the data dir, formats the storage
#     only if it is not formatted yet (data/meta.properties), starts `kafka.Kafka` in the background
#     (pid file) and waits until the broker really serves requests: a Kafka Metadata request that
#     lists the broker (so it is registered and unfenced), not merely an open TCP port
#   - writes an env file with KAFKA_BOOTSTRAP
#
# Data dir ($KAFKA_DATA_DIR, default ~/.cache/lifeline-sentinel/kafka-data):
#   server.properties, log4j.properties   written on each start
#   data/                                 log.dirs (topics, KRaft metadata log, meta.properties)
#   kafka.pid                             the broker's pid (scripts/kafka-down.sh stops it)
#   server.log                            Kafka's log4j log (WARN and up, plus start-up/shut-down lines)
#   kafka.out                             the JVM's stdout/stderr (crashes, storage formatting)
#
# Environment (all optional):
#   KAFKA_PORT             (9092)  PLAINTEXT listener, bound on 127.0.0.1 only
#   KAFKA_CONTROLLER_PORT  (9093)  KRaft controller listener, 127.0.0.1 only
#   KAFKA_DATA_DIR         (~/.cache/lifeline-sentinel/kafka-data)
#   KAFKA_ENV_FILE         (~/.cache/lifeline-sentinel/kafka.env)
#   KAFKA_START_TIMEOUT    (60)    seconds to wait for the broker to serve requests
#   KAFKA_HEAP_OPTS        (-Xms256m -Xmx768m)
#   KAFKA_JVM_OPTS         (-XX:+UseG1GC)
#   KAFKA_CLUSTER_ID       cluster id used when formatting fresh storage (default: a random one)
#   KAFKA_EXTRA_PROPERTIES lines appended to server.properties (later lines win)
#   JAVA_HOME              java to run (default: java on PATH)
#   KAFKA_VERSION, LIFELINE_CACHE_DIR: see scripts/kafka-build.sh
#
# The readiness check is a few lines of python3 (standard library only) speaking the Kafka protocol;
# without python3 it falls back to Kafka's own kafka.admin.BrokerApiVersionsCommand (a JVM per try).
#
# Stop it with scripts/kafka-down.sh (same KAFKA_DATA_DIR).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="${KAFKA_VERSION:-3.9.1}"
CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
LIBS="$CACHE_ROOT/kafka/$VERSION/libs"
HOST=127.0.0.1
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
BOOTSTRAP="$HOST:$PORT"
DATA_DIR="${KAFKA_DATA_DIR:-$CACHE_ROOT/kafka-data}"
ENV_FILE="${KAFKA_ENV_FILE:-$CACHE_ROOT/kafka.env}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}"
JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC}"
NODE_ID=1
# short-lived tool JVMs (storage format, fallback readiness check): start-up matters, not peak speed
TOOL_JVM_OPTS="-Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
PID_FILE="$DATA_DIR/kafka.pid"
LOG_FILE="$DATA_DIR/server.log"
OUT_FILE="$DATA_DIR/kafka.out"
CONFIG="$DATA_DIR/server.properties"
LOG4J="$DATA_DIR/log4j.properties"
LOG_DIRS="$DATA_DIR/data"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
T0=$(now_ms)
secs() { local ms=$(( $(now_ms) - T0 )); printf '%d.%01ds' $((ms / 1000)) $(( (ms % 1000) / 100 )); }
say() { echo "[kafka-up] $*"; }
die() {
  echo "[kafka-up] ERROR: $*" >&2
  local f
  for f in "$LOG_FILE" "$OUT_FILE"; do
    if [ -s "$f" ]; then
      echo "----- last 40 lines of $f -----" >&2
      tail -n 40 "$f" >&2 || true
      echo "----- end of log tail -----" >&2
    fi
  done
  exit 1
}

case "$PORT$CONTROLLER_PORT" in *[!0-9]*) die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must be numbers" ;; esac
[ "$PORT" != "$CONTROLLER_PORT" ] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ (both $PORT)"

if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA="$(command -v java || true)"
fi

# A Kafka Metadata request (v4: no topics) to the broker. Exit 0: it lists node $NODE_ID, i.e. the
# broker is registered, unfenced and serving; 1: a Kafka broker answers but does not list itself yet;
# 2: nothing answers (refused, closed, timed out); 3: something answers that does not speak Kafka.
PY_READY='
import socket, struct, sys
host, port, node = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cid = b"kafka-up"
req = struct.pack(">hhih", 3, 4, 7, len(cid)) + cid + struct.pack(">ib", 0, 0)
try:
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(3)
        s.sendall(struct.pack(">i", len(req)) + req)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit(2 if not buf else 3)
            buf += chunk
            if len(buf) >= 4 and not 0 < struct.unpack(">i", buf[:4])[0] < 1 << 24:
                sys.exit(3)
except OSError:
    sys.exit(2)
try:
    corr, _throttle, n = struct.unpack_from(">iii", buf, 4)
    if corr != 7:
        sys.exit(3)
    off = 16
    for _ in range(n):
        node_id, hlen = struct.unpack_from(">ih", buf, off)
        off += 6 + hlen
        _port, rlen = struct.unpack_from(">ih", buf, off)
        off += 6 + max(rlen, 0)
        if node_id == node:
            sys.exit(0)
except struct.error:
    sys.exit(3)
sys.exit(1)
'

# Exit codes as PY_READY's.
kafka_ready() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c "$PY_READY" "$HOST" "$PORT" "$NODE_ID"
    return
  fi
  port_open "$PORT" || return 2
  [ -n "$JAVA" ] && [ -d "$LIBS" ] || return 1
  local out
  # shellcheck disable=SC2086
  out="$(timeout 30 "$JAVA" $TOOL_JVM_OPTS -Dlog4j.configuration=file:/dev/null -cp "$LIBS/*" \
    kafka.admin.BrokerApiVersionsCommand --bootstrap-server "$BOOTSTRAP" 2>/dev/null)" || return 1
  case "$out" in *"(id: $NODE_ID "*) return 0 ;; *) return 1 ;; esac
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null; }

pid_alive() {
  [ -f "$PID_FILE" ] || return 1
  local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'
}

write_env_file() {
  mkdir -p "$(dirname "$ENV_FILE")"
  local tmp="$ENV_FILE.tmp.$$"
  cat >"$tmp" <<EOF
# Written by scripts/kafka-up.sh: local single-node Kafka broker (KRaft, PLAINTEXT, loopback only).
# Load in a shell with:  set -a; . "$ENV_FILE"; set +a
KAFKA_BOOTSTRAP=$BOOTSTRAP
EOF
  mv -f "$tmp" "$ENV_FILE"
  say "wrote $ENV_FILE"
}

finish() {
  write_env_file
  say "ready: $BOOTSTRAP"
}

# ---- build if needed ----------------------------------------------------------------------
bash "$SCRIPT_DIR/kafka-build.sh"
[ -d "$LIBS" ] || die "no Kafka jars at $LIBS after scripts/kafka-build.sh"
[ -n "$JAVA" ] || die "java is not on PATH"

# ---- already running? ---------------------------------------------------------------------
rc=0; kafka_ready || rc=$?
if [ "$rc" -eq 0 ]; then
  say "a Kafka broker already answers on $BOOTSTRAP; starting nothing"
  finish
  exit 0
fi

mkdir -p "$DATA_DIR" "$LOG_DIRS"

if pid_alive; then
  say "kafka (pid $(cat "$PID_FILE")) is running but not serving yet; waiting for it"
else
  rm -f "$PID_FILE"
  if [ "$rc" -eq 3 ] || port_open "$PORT"; then
    die "something else (not a ready Kafka broker of ours) listens on $BOOTSTRAP; choose another KAFKA_PORT"
  fi
  if port_open "$CONTROLLER_PORT"; then
    die "something else listens on the controller port $HOST:$CONTROLLER_PORT; choose another KAFKA_CONTROLLER_PORT"
  fi

  cat >"$CONFIG" <<EOF
# Written by scripts/kafka-up.sh on each start: single-node KRaft broker+controller on loopback.
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$NODE_ID@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$LOG_DIRS
# one node: every internal topic and default with a single replica
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# fewer partitions than the default 50 for the internal topics: the first consumer group (and the first
# transaction) then waits ~0.3 s instead of ~1.5 s for them to be created and loaded
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
auto.create.topics.enable=true
# consumer groups: no join delay, and short session timeouts allowed (tests use ~1-6 s)
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
EOF
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
    printf '# KAFKA_EXTRA_PROPERTIES\n%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$CONFIG"
  fi

  cat >"$LOG4J" <<EOF
# Written by scripts/kafka-up.sh: warnings and errors to $LOG_FILE, plus start-up/shut-down lines.
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$LOG_FILE
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=WARN
log4j.logger.org.apache.kafka=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.server.KafkaRaftServer=INFO
EOF

  if [ ! -f "$LOG_DIRS/meta.properties" ]; then
    cluster_id="${KAFKA_CLUSTER_ID:-}"
    if [ -z "$cluster_id" ]; then
      # 16 random bytes as unpadded URL-safe base64, as StorageTool random-uuid prints (no leading '-').
      until [ -n "$cluster_id" ] && [ "${cluster_id:0:1}" != "-" ]; do
        cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
      done
    fi
    say "formatting $LOG_DIRS (cluster id $cluster_id)"
    echo "===== $(date -u +%FT%TZ) kafka-up: formatting storage (cluster id $cluster_id)" >>"$OUT_FILE"
    (
      cd "$DATA_DIR"
      # shellcheck disable=SC2086
      "$JAVA" $TOOL_JVM_OPTS -Dlog4j.configuration="file:$LOG4J" -cp "$LIBS/*" \
        kafka.tools.StorageTool format -t "$cluster_id" -c "$CONFIG"
    ) </dev/null >>"$OUT_FILE" 2>&1 || die "kafka.tools.StorageTool format failed"
    [ -f "$LOG_DIRS/meta.properties" ] || die "no $LOG_DIRS/meta.properties after formatting"
  else
    say "storage already formatted ($(sed -n 's/^cluster\.id=/cluster id /p' "$LOG_DIRS/meta.properties"))"
  fi

  say "starting Kafka $VERSION on $BOOTSTRAP (controller $HOST:$CONTROLLER_PORT, data: $DATA_DIR, log: $LOG_FILE)"
  echo "===== $(date -u +%FT%TZ) kafka-up: starting Kafka $VERSION on $BOOTSTRAP" >>"$OUT_FILE"
  (
    cd "$DATA_DIR"
    # shellcheck disable=SC2086  # the *_OPTS are word lists
    exec nohup "$JAVA" $HEAP_OPTS $JVM_OPTS -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$LOG4J" -cp "$LIBS/*" kafka.Kafka "$CONFIG"
  ) </dev/null >>"$OUT_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  say "kafka pid $(cat "$PID_FILE")"
fi

# ---- wait until it serves requests ----------------------------------------------------------
deadline=$(( $(date +%s) + START_TIMEOUT ))
until kafka_ready; do
  if ! pid_alive; then
    rm -f "$PID_FILE"
    die "kafka exited before it served requests on $BOOTSTRAP"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    die "timed out after ${START_TIMEOUT}s waiting for the broker on $BOOTSTRAP (kafka pid $(cat "$PID_FILE") still running; stop it with scripts/kafka-down.sh)"
  fi
  sleep 0.2
done
say "serving on $BOOTSTRAP after $(secs)"
finish

# Sourced by the *-down.sh scripts: stop a server we started, by its pid file, idempotently.
# stop_pidfile NAME PID_FILE TIMEOUT_S
#   no pid file, a dead pid or a pid that is not NAME: not an error (the stale pid file is removed,
#   an unrelated process is never killed); otherwise SIGTERM, then SIGKILL after TIMEOUT_S.
stop_pidfile() {
  local name="$1" pid_file="$2" timeout_s="$3" pid waited=0
  if [ ! -f "$pid_file" ]; then
    echo "[$name-down] no pid file ($pid_file): nothing to stop"
    return 0
  fi
  pid="$(cat "$pid_file" 2>/dev/null || true)"
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "[$name-down] $name (pid ${pid:-?}) is not running; removing stale pid file"
    rm -f "$pid_file"
    return 0
  fi
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$name"; then
    echo "[$name-down] pid $pid is not $name; removing stale pid file without killing it"
    rm -f "$pid_file"
    return 0
  fi
  echo "[$name-down] stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge $((timeout_s * 20)) ]; then
      echo "[$name-down] still running after ${timeout_s}s: sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.05
    waited=$((waited + 1))
  done
  rm -f "$pid_file"
  echo "[$name-down] stopped"
}

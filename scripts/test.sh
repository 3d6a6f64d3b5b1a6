#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (the project and its test
# extras in a cached virtualenv, Debian's mosquitto, chromium, maven and a JDK, the Kafka broker's jars),
# lints, then runs pytest.
# Servers the tests need are started by the tests themselves on loopback (see tests/conftest.py).
# Extra arguments go to pytest.
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"
say() { echo "[test] $*" >&2; }

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto mosquitto-clients)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -d /usr/share/fonts/truetype/wqy ] || need_apt+=(fonts-wqy-zenhei)  # Chinese labels in page screenshots
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)                   # fetches the Kafka broker's jars
command -v java >/dev/null 2>&1 || need_apt+=(default-jdk-headless)   # runs the Kafka broker
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need_apt[@]}" >&2
fi

BIN="$("$REPO_DIR/scripts/setup.sh" | tail -n 1)"
say "ruff check"
"$BIN/ruff" check .
say "Kafka broker jars (scripts/kafka-build.sh)"
"$REPO_DIR/scripts/kafka-build.sh"
say "pytest"
exec "$BIN/python" -m pytest "$@"

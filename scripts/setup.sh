#!/usr/bin/env bash
# Create (or reuse) the project's virtualenv outside the repo and install the project into it.
# Idempotent and fast on a second run: pip runs only when pyproject.toml changed.
# Prints the venv's bin directory on the last line of stdout.
#   LIFELINE_CACHE_DIR (~/.cache/lifeline-sentinel)  PYTHON (python3)  SETUP_EXTRAS ("test")
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
VENV="$CACHE_ROOT/venv"
EXTRAS="${SETUP_EXTRAS-test}"
PY="${PYTHON:-python3}"

say() { echo "[setup] $*" >&2; }
mkdir -p "$CACHE_ROOT"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import sys; assert sys.version_info >= (3, 11)" 2>/dev/null; then
  say "creating virtualenv $VENV"
  "$PY" -m venv --clear "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
fi
stamp="$VENV/.lifeline-stamp"
want="$(cat "$REPO_DIR/pyproject.toml" | sha256sum | cut -c1-16)-$EXTRAS-$REPO_DIR"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] || ! "$VENV/bin/python" -c "import sentinel.cli" 2>/dev/null; then
  say "installing lifeline-sentinel${EXTRAS:+[$EXTRAS]} into $VENV"
  spec="$REPO_DIR"
  [ -n "$EXTRAS" ] && spec="$REPO_DIR[$EXTRAS]"
  "$VENV/bin/python" -m pip install -q -e "$spec" >&2
  echo "$want" >"$stamp"
else
  say "virtualenv up to date ($VENV)"
fi
echo "$VENV/bin"

#!/usr/bin/env bash
# Build a real InfluxDB 2.x OSS server (influxd) from its Go module, without Docker.
#
# Result: ${LIFELINE_CACHE_DIR:-~/.cache/lifeline-sentinel}/influxdb/<version>/influxd
# Idempotent: exits at once when that binary exists and `influxd version` runs.
#
# How (see shared/design/services.md, "InfluxDB 2.x OSS"):
#   1. go mod download github.com/influxdata/influxdb/v2@<version> (Go module proxy)
#   2. copy the module to a writable folder
#   3. build InfluxData's pkg-config wrapper (github.com/influxdata/pkg-config, pinned in go.mod)
#   4. let the wrapper build libflux (Rust, `cargo build --release`, crates from crates.io)
#   5. CGO_ENABLED=1 go build -tags sqlite_foreign_keys,sqlite_json ./cmd/influxd
#
# Environment:
#   INFLUXDB_VERSION            module version to build (default v2.9.1)
#   LIFELINE_CACHE_DIR          cache root (default ~/.cache/lifeline-sentinel)
#   INFLUXDB_RUSTUP_TOOLCHAIN   rustup toolchain for libflux (default: rustup's default toolchain;
#                               flux pins 1.83 in rust-toolchain.toml, which is not installed here)
#   INFLUXDB_BUILD_FORCE=1      rebuild even if the cached binary works
#
# Caches kept under the cache root so that a second build is fast:
#   go/mod (GOMODCACHE), go/build (GOCACHE; also holds the libflux copy + cargo target dir
#   that the pkg-config wrapper uses), cargo-home (CARGO_HOME: crates.io downloads).
set -euo pipefail

VERSION="${INFLUXDB_VERSION:-v2.9.1}"
case "$VERSION" in v*) ;; *) VERSION="v$VERSION" ;; esac

CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
INSTALL_DIR="$CACHE_ROOT/influxdb/$VERSION"
BIN="$INSTALL_DIR/influxd"
WORK_DIR="$CACHE_ROOT/influxdb/work"
LOG="$CACHE_ROOT/influxdb/build-$VERSION.log"

START_TS=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START_TS ))s"; }
say() { echo "[influxdb-build +$(elapsed)] $*"; }
die() {
  echo "[influxdb-build +$(elapsed)] ERROR: $*" >&2
  if [ -f "$LOG" ]; then
    echo "----- last 60 lines of $LOG -----" >&2
    tail -n 60 "$LOG" >&2 || true
    echo "----- end of log tail -----" >&2
  fi
  exit 1
}

binary_ok() { [ -x "$1" ] && "$1" version >/dev/null 2>&1; }

# ---- step 0: fast path -------------------------------------------------------------------
if [ "${INFLUXDB_BUILD_FORCE:-0}" != "1" ] && binary_ok "$BIN"; then
  say "cached: $BIN ($("$BIN" version 2>/dev/null | head -n1))"
  exit 0
fi

mkdir -p "$CACHE_ROOT/influxdb" "$WORK_DIR"

# Serialise concurrent builds (e.g. two up-scripts at once).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/influxdb/.build.lock"
  if ! flock -n 9; then
    say "another build holds $CACHE_ROOT/influxdb/.build.lock; waiting for it"
    flock 9
  fi
  if [ "${INFLUXDB_BUILD_FORCE:-0}" != "1" ] && binary_ok "$BIN"; then
    say "built by the other process: $BIN"
    exit 0
  fi
fi

: >"$LOG"
say "building influxd $VERSION (log: $LOG)"

# Run a long command with its output in the log, printing a heartbeat every 60 s.
# PROGRESS_HINT, if set, is a command whose output is shown in the heartbeat instead of the
# last log line.
PROGRESS_HINT=""
run_logged() {
  local step="$1"; shift
  local t0; t0=$(date +%s)
  say "step: $step"
  echo "===== [$(date -u +%FT%TZ)] step: $step: $*" >>"$LOG"
  "$@" >>"$LOG" 2>&1 &
  local pid=$! n=0 rc=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    n=$((n + 1))
    if [ $((n % 60)) -eq 0 ] && kill -0 "$pid" 2>/dev/null; then
      local last
      if [ -n "$PROGRESS_HINT" ]; then
        last=$(eval "$PROGRESS_HINT" 2>/dev/null || true)
      else
        last="last log line: $(tail -n 1 "$LOG" 2>/dev/null | cut -c1-120 || true)"
      fi
      say "  ... $step still running ($(( $(date +%s) - t0 ))s in step) $last"
    fi
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    die "step '$step' failed (exit $rc) after $(( $(date +%s) - t0 ))s"
  fi
  say "done: $step ($(( $(date +%s) - t0 ))s)"
}

# ---- step 1: system packages -------------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go is not on PATH"
command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (libflux is Rust)"
missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v gcc >/dev/null 2>&1 || command -v cc >/dev/null 2>&1 || missing+=(gcc)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    die "need root to apt-get install ${missing[*]}"
  fi
  run_logged "apt-get update" env DEBIAN_FRONTEND=noninteractive apt-get update
  run_logged "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
REAL_PKG_CONFIG="$(command -v pkg-config)"
say "toolchains: $(go version | cut -d' ' -f3-4), $(cargo --version 2>/dev/null | cut -d' ' -f1-2), pkg-config $REAL_PKG_CONFIG"

# ---- environment for the build -----------------------------------------------------------
export GOMODCACHE="$CACHE_ROOT/go/mod"
export GOCACHE="$CACHE_ROOT/go/build"
export CARGO_HOME="$CACHE_ROOT/cargo-home"
export GOTOOLCHAIN=local        # never try to download another Go toolchain
export GOFLAGS="-buildvcs=false"
export GO111MODULE=on
export CGO_ENABLED=1
# flux's crates say #![deny(warnings)] (feature "strict"): a newer rustc's new lints must not
# break the build.
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--cap-lints=warn"
export CARGO_TERM_COLOR=never
export CARGO_INCREMENTAL=0
mkdir -p "$GOMODCACHE" "$GOCACHE" "$CARGO_HOME"

# flux pins Rust 1.83 in rust-toolchain.toml; use an installed toolchain instead of letting
# rustup try to download that one.
if [ -n "${INFLUXDB_RUSTUP_TOOLCHAIN:-}" ]; then
  export RUSTUP_TOOLCHAIN="$INFLUXDB_RUSTUP_TOOLCHAIN"
elif command -v rustup >/dev/null 2>&1; then
  tc="$(rustup default 2>/dev/null | awk 'NR==1{print $1}')"
  if [ -z "$tc" ] || [ "$tc" = "no" ]; then
    tc="$(rustup toolchain list 2>/dev/null | awk 'NR==1{print $1}')"
  fi
  [ -n "$tc" ] || die "rustup has no installed toolchain"
  export RUSTUP_TOOLCHAIN="$tc"
fi
export RUSTUP_AUTO_INSTALL=0
say "rust: RUSTUP_TOOLCHAIN=${RUSTUP_TOOLCHAIN:-<unset>} ($(rustc --version 2>/dev/null || echo '?')) RUSTFLAGS=$RUSTFLAGS"

# ---- step 2: download the module ---------------------------------------------------------
MODJSON="$WORK_DIR/module-$VERSION.json"
cached_dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$MODJSON" 2>/dev/null | head -n1 || true)"
if [ -n "$cached_dir" ] && [ -f "$cached_dir/go.mod" ]; then
  say "module already downloaded (from $MODJSON)"
else
run_logged "go mod download github.com/influxdata/influxdb/v2@$VERSION" \
  bash -c 'cd "$1" && { go mod download -json "github.com/influxdata/influxdb/v2@$2" >"$3" || { cat "$3"; exit 1; }; }' _ \
  "$WORK_DIR" "$VERSION" "$MODJSON"
fi
MOD_DIR="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' "$MODJSON" | head -n1)"
COMMIT="$(sed -n 's/^[[:space:]]*"Hash": "\(.*\)",\{0,1\}$/\1/p' "$MODJSON" | head -n1)"
[ -n "$MOD_DIR" ] && [ -d "$MOD_DIR" ] || die "could not find the module dir in $MODJSON"
say "module source: $MOD_DIR (commit ${COMMIT:-unknown})"

# ---- step 3: writable copy of the source -------------------------------------------------
SRC="$WORK_DIR/src-$VERSION"
if [ ! -f "$SRC/.lifeline-copy-complete" ]; then
  say "step: copy module source to $SRC"
  rm -rf "$SRC" "$SRC.tmp"
  cp -a "$MOD_DIR" "$SRC.tmp"
  chmod -R u+w "$SRC.tmp"
  touch "$SRC.tmp/.lifeline-copy-complete"
  mv "$SRC.tmp" "$SRC"
fi
cd "$SRC"

# ---- step 4: InfluxData's pkg-config wrapper ---------------------------------------------
TOOLS_BIN="$WORK_DIR/bin-$VERSION"
mkdir -p "$TOOLS_BIN"
run_logged "go build github.com/influxdata/pkg-config" \
  go build -o "$TOOLS_BIN/pkg-config-flux" github.com/influxdata/pkg-config
export PKG_CONFIG="$TOOLS_BIN/pkg-config-flux"
export PKG_CONFIG_LOG="$WORK_DIR/pkg-config-flux.log"

# ---- step 5: libflux (Rust) --------------------------------------------------------------
# The wrapper copies the (read-only) flux module to $GOCACHE/pkgconfig/<path>@<version> and runs
# cargo there; a half-done copy from an interrupted run would be reused, so place it ourselves,
# atomically.
read -r FLUX_PATH FLUX_VER FLUX_DIR < <(go list -m -f '{{.Path}} {{.Version}} {{.Dir}}' github.com/influxdata/flux)
if [ -z "${FLUX_DIR:-}" ] || [ ! -d "$FLUX_DIR" ]; then
  run_logged "go mod download $FLUX_PATH@$FLUX_VER" go mod download "$FLUX_PATH@$FLUX_VER"
  read -r FLUX_PATH FLUX_VER FLUX_DIR < <(go list -m -f '{{.Path}} {{.Version}} {{.Dir}}' github.com/influxdata/flux)
fi
FLUX_COPY="$GOCACHE/pkgconfig/$FLUX_PATH@$FLUX_VER"
if [ ! -f "$FLUX_COPY/.lifeline-copy-complete" ]; then
  say "step: copy $FLUX_PATH@$FLUX_VER to $FLUX_COPY"
  rm -rf "$FLUX_COPY" "$FLUX_COPY.tmp"
  mkdir -p "$(dirname "$FLUX_COPY")"
  cp -a "$FLUX_DIR" "$FLUX_COPY.tmp"
  chmod -R u+w "$FLUX_COPY.tmp"
  touch "$FLUX_COPY.tmp/.lifeline-copy-complete"
  mv "$FLUX_COPY.tmp" "$FLUX_COPY"
fi
# (cargo's output is buffered by the wrapper and only logged on error)
PROGRESS_HINT='echo "rust artifacts built: $(ls "$FLUX_COPY"/libflux/target/*/release/deps 2>/dev/null | wc -l)"'
run_logged "build libflux $FLUX_VER (cargo build --release via pkg-config wrapper)" \
  "$PKG_CONFIG" --cflags --libs flux
PROGRESS_HINT='echo "go packages built: $(grep -c -E "^[a-z0-9.-]+(/|$)" "$LOG" 2>/dev/null)"'

# ---- step 6: influxd ---------------------------------------------------------------------
OUT="$INSTALL_DIR/.influxd.tmp.$$"
mkdir -p "$INSTALL_DIR"
trap 'rm -f "$OUT"' EXIT
LDFLAGS="-s -w -X main.version=$VERSION -X main.commit=${COMMIT:0:10} -X main.date=$(date -u +%FT%TZ)"
run_logged "go build ./cmd/influxd" \
  go build -v -tags sqlite_foreign_keys,sqlite_json -ldflags "$LDFLAGS" -o "$OUT" ./cmd/influxd

binary_ok "$OUT" || die "the built binary does not run '$OUT version'"
mv -f "$OUT" "$BIN"
trap - EXIT
say "installed $BIN: $("$BIN" version | head -n1)"
say "total build time $(elapsed); cache size: $(du -sh "$CACHE_ROOT" 2>/dev/null | cut -f1)"

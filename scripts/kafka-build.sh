#!/usr/bin/env bash
# Fetch a real Apache Kafka broker (KRaft mode) as jars from Maven Central, without Docker or a tarball.
#
# Result: ${LIFELINE_CACHE_DIR:-~/.cache/lifeline-sentinel}/kafka/<version>/libs/*.jar
#         (run with `java -cp 'libs/*' kafka.Kafka server.properties`, see scripts/kafka-up.sh)
# Idempotent: exits at once when the stamp file of a finished fetch exists (no JVM, no Maven).
#
# How (see shared/design/services.md, "Apache Kafka 3.9.x in KRaft mode from Maven Central"):
#   1. write a throwaway pom.xml (packaging pom) into a temp dir, depending on
#      org.apache.kafka:kafka_2.13:<version> plus the logging it needs at run time but does not bring
#      (ch.qos.reload4j:reload4j, org.slf4j:slf4j-reload4j: without them the broker can die at start-up)
#   2. mvn dependency:copy-dependencies -DincludeScope=runtime into libs.tmp
#   3. check that the jars run (kafka.tools.StorageTool random-uuid), move libs.tmp to libs, write the stamp
# An interrupted fetch leaves no stamp, so the next run starts it again from a clean libs.tmp.
#
# Environment:
#   KAFKA_VERSION            Kafka version (default 3.9.1)
#   LIFELINE_CACHE_DIR       cache root (default ~/.cache/lifeline-sentinel)
#   KAFKA_BUILD_FORCE=1      fetch again even if the stamp exists
#   JAVA_HOME                java to check the jars with (default: java on PATH)
#
# Maven's local repository is kept under the cache root too ($CACHE/m2), so that caching ~/.cache
# (as CI does) also makes a fresh fetch an offline copy.
set -euo pipefail

VERSION="${KAFKA_VERSION:-3.9.1}"
SCALA_VERSION=2.13
RELOAD4J_VERSION=1.2.25
SLF4J_VERSION=1.7.36
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1

CACHE_ROOT="${LIFELINE_CACHE_DIR:-$HOME/.cache/lifeline-sentinel}"
INSTALL_DIR="$CACHE_ROOT/kafka/$VERSION"
LIBS="$INSTALL_DIR/libs"
STAMP="$INSTALL_DIR/.fetched"
KAFKA_JAR="$LIBS/kafka_$SCALA_VERSION-$VERSION.jar"
M2_REPO="$CACHE_ROOT/m2"
LOG="$CACHE_ROOT/kafka/build-$VERSION.log"

START_TS=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START_TS ))s"; }
say() { echo "[kafka-build +$(elapsed)] $*" >&2; }
die() {
  echo "[kafka-build +$(elapsed)] ERROR: $*" >&2
  if [ -s "$LOG" ]; then
    echo "----- last 60 lines of $LOG -----" >&2
    tail -n 60 "$LOG" >&2 || true
    echo "----- end of log tail -----" >&2
  fi
  exit 1
}

fetched() { [ -f "$STAMP" ] && [ -f "$KAFKA_JAR" ]; }

# ---- step 0: fast path -------------------------------------------------------------------
if [ "${KAFKA_BUILD_FORCE:-0}" != "1" ] && fetched; then
  say "cached: $LIBS (Kafka $VERSION, $(sed -n 's/^jars=//p' "$STAMP") jars)"
  exit 0
fi

command -v mvn >/dev/null 2>&1 ||
  die "mvn (Apache Maven) is not on PATH: install it (Debian: apt-get install maven)"
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA="$(command -v java || true)"
fi
[ -n "$JAVA" ] ||
  die "java is not on PATH (Kafka $VERSION needs Java 11+, 17 recommended): install it (Debian: apt-get install default-jdk-headless)"

mkdir -p "$CACHE_ROOT/kafka" "$M2_REPO"

# Serialise concurrent fetches (e.g. two test sessions at once).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE_ROOT/kafka/.build.lock"
  if ! flock -n 9; then
    say "another fetch holds $CACHE_ROOT/kafka/.build.lock; waiting for it"
    flock 9
  fi
  if [ "${KAFKA_BUILD_FORCE:-0}" != "1" ] && fetched; then
    say "fetched by the other process: $LIBS"
    exit 0
  fi
fi

: >"$LOG"
say "fetching Kafka $VERSION jars from Maven Central into $LIBS (log: $LOG)"

TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/kafka-build.XXXXXX")"
trap 'rm -rf "$TMP_DIR" "$LIBS.tmp"' EXIT

# ---- step 1: throwaway pom ---------------------------------------------------------------
cat >"$TMP_DIR/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/kafka-build.sh: only used to collect the broker's jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>lifeline-sentinel</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>$VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$VERSION</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>$RELOAD4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF

# ---- step 2: copy the runtime dependencies -----------------------------------------------
rm -rf "$LIBS.tmp"
mkdir -p "$INSTALL_DIR"
say "step: mvn $DEPENDENCY_PLUGIN:copy-dependencies (Maven repo: $M2_REPO)"
t0=$(date +%s)
echo "===== [$(date -u +%FT%TZ)] mvn copy-dependencies (Kafka $VERSION)" >>"$LOG"
(
  cd "$TMP_DIR"
  mvn -B -q -ntp -Dmaven.repo.local="$M2_REPO" \
    "$DEPENDENCY_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp"
) >>"$LOG" 2>&1 || die "mvn could not fetch the jars of org.apache.kafka:kafka_$SCALA_VERSION:$VERSION"
n_jars="$(find "$LIBS.tmp" -maxdepth 1 -name '*.jar' | wc -l)"
say "done: $n_jars jars ($(du -sh "$LIBS.tmp" | cut -f1)) in $(( $(date +%s) - t0 ))s"
[ -f "$LIBS.tmp/$(basename "$KAFKA_JAR")" ] || die "no $(basename "$KAFKA_JAR") among the fetched jars"

# ---- step 3: check, install, stamp -------------------------------------------------------
say "step: check the jars run (kafka.tools.StorageTool random-uuid)"
uuid="$("$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$LIBS.tmp/*" kafka.tools.StorageTool random-uuid 2>>"$LOG")" ||
  die "the fetched jars do not run kafka.tools.StorageTool (java: $JAVA)"
[ "${#uuid}" -eq 22 ] || die "kafka.tools.StorageTool random-uuid printed '$uuid', not a 22-char id"

rm -f "$STAMP"
rm -rf "$LIBS"
mv "$LIBS.tmp" "$LIBS"
printf 'version=%s\njars=%s\nfetched=%s\n' "$VERSION" "$n_jars" "$(date -u +%FT%TZ)" >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
say "installed $LIBS (Kafka $VERSION, $n_jars jars); total $(elapsed)"

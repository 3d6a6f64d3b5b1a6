#!/usr/bin/env bash
# Write a Mosquitto password file with the project's two users (hashed by mosquitto_passwd -b).
#
#   scripts/mosquitto-passwd.sh OUTFILE
#
# The defaults are DEV-ONLY; set real ones in the environment for anything that leaves a laptop:
#   MQTT_SENTINEL_USER (sentinel) / MQTT_SENTINEL_PASSWORD (sentinel-dev)   the processor
#   MQTT_DEVICE_USER   (device)   / MQTT_DEVICE_PASSWORD   (device-dev)     devices, simulators
# The ACL (deploy/mosquitto/acl) grants rights by the user names `sentinel` and `device`; if you rename
# the users, edit the ACL too.
#   MOSQUITTO_PASSWD_MODE (600)  file mode; a container's mosquitto (uid 1883) must be able to read
#                                it: chown 1883 the file, or use 644 for a dev-only file.
set -euo pipefail

out="${1:?usage: $0 OUTFILE}"
command -v mosquitto_passwd >/dev/null 2>&1 || { echo "[mosquitto-passwd] mosquitto_passwd not found" >&2; exit 1; }

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
mkdir -p "$(dirname "$out")"
: >"$tmp"
chmod 600 "$tmp"
mosquitto_passwd -b "$tmp" "${MQTT_SENTINEL_USER:-sentinel}" "${MQTT_SENTINEL_PASSWORD:-sentinel-dev}"
mosquitto_passwd -b "$tmp" "${MQTT_DEVICE_USER:-device}" "${MQTT_DEVICE_PASSWORD:-device-dev}"
chmod "${MOSQUITTO_PASSWD_MODE:-600}" "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "[mosquitto-passwd] wrote $out"

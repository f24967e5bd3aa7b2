#!/bin/sh
# Removes the nearmesh service and code installed by scripts/install.sh. The config, the mesh key and the
# identity stay unless --purge (then /etc/nearmesh, /var/lib/nearmesh and the user go too).
#   sudo scripts/uninstall.sh [--prefix DIR] [--purge]
# For tests: NEARMESH_ROOT and NEARMESH_NO_SYSTEM as for install.sh.
set -eu

prefix=/opt/nearmesh
purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --purge) purge=1; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

root=${NEARMESH_ROOT:-}
system=$([ "${NEARMESH_NO_SYSTEM:-0}" = 1 ] && echo 0 || echo 1)
if [ "$system" = 1 ] && [ "$(id -u)" -ne 0 ]; then echo "uninstall.sh: run as root (sudo)" >&2; exit 1; fi

if [ "$system" = 1 ]; then
  systemctl disable --now nearmesh.service 2>/dev/null || true
fi
rm -f "$root/etc/systemd/system/nearmesh.service"
if [ "$system" = 1 ]; then systemctl daemon-reload; fi
rm -rf "$root$prefix"
if [ "$purge" = 1 ]; then
  rm -rf "$root/etc/nearmesh" "$root/var/lib/nearmesh"
  if [ "$system" = 1 ] && getent passwd nearmesh >/dev/null; then userdel nearmesh; fi
fi
echo "uninstall.sh: nearmesh removed$([ "$purge" = 1 ] && echo ', with its config and state' || echo '; config and state kept')"

#!/bin/sh
# Installs nearmesh from this checkout as a systemd service; safe to run again (an upgrade keeps the
# config, the mesh key and the identity). Build first: npm ci.
#   sudo scripts/install.sh [--prefix DIR] [--no-start]
# --prefix   where the code goes (default /opt/nearmesh)
# --no-start install and enable, but do not (re)start now
# For tests: NEARMESH_ROOT=DIR installs under DIR instead of /, NEARMESH_NO_SYSTEM=1 skips useradd,
# chown and systemctl.
set -eu

prefix=/opt/nearmesh
start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

root=${NEARMESH_ROOT:-}
system=$([ "${NEARMESH_NO_SYSTEM:-0}" = 1 ] && echo 0 || echo 1)
src=$(cd "$(dirname "$0")/.." && pwd)
node=$(command -v node || true)

fail() { echo "install.sh: $*" >&2; exit 1; }
[ -n "$node" ] || fail "node is not on PATH (Node.js 20 or newer is needed)"
major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "Node.js $major is too old: 20 or newer is needed"
[ -f "$src/dist/agent/cli/main.js" ] || fail "no build in $src: run npm ci first"
if [ "$system" = 1 ] && [ "$(id -u)" -ne 0 ]; then fail "run as root (sudo)"; fi

# 1. The service user, in the groups that own Bluetooth and serial devices.
if [ "$system" = 1 ]; then
  getent passwd nearmesh >/dev/null ||
    useradd --system --user-group --home-dir /var/lib/nearmesh --no-create-home --shell /usr/sbin/nologin nearmesh
  for group in bluetooth dialout; do
    if getent group "$group" >/dev/null; then usermod -a -G "$group" nearmesh; fi
  done
fi

# 2. The code: copied next to the old one, then swapped in, so a failed copy leaves the old install working.
target="$root$prefix"
mkdir -p "$(dirname "$target")"
staging="$target.new.$$"
rm -rf "$staging"
mkdir -p "$staging"
cp -a "$src/package.json" "$src/package-lock.json" "$src/dist" "$src/node_modules" "$src/docs" "$src/README.md" "$staging/"
# The service needs the runtime dependencies only (no test or build tools): drop the rest, offline.
(cd "$staging" && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
rm -rf "$target.old"
if [ -d "$target" ]; then mv "$target" "$target.old"; fi
mv "$staging" "$target"
rm -rf "$target.old"

# 3. The config, only if there is none. No mesh key: the device joins a mesh with a code (nearmesh invite
# on a member, nearmesh join CODE here), or founds one with its first invite.
config_dir="$root/etc/nearmesh"
config="$config_dir/nearmesh.toml"
mkdir -p "$config_dir"
if [ ! -f "$config" ]; then
  (umask 027; cat >"$config.tmp") <<TOML
# nearmesh config: every key is in docs/OPERATIONS.md. No mesh_key here: "nearmesh join CODE" adds this
# device to a mesh ("nearmesh invite" on a member prints the code); its first "nearmesh invite" founds one.
name = "$(hostname)"

[control]
socket = "/run/nearmesh/control.sock"
TOML
  mv "$config.tmp" "$config"
  echo "install.sh: wrote $config"
fi
if [ "$system" = 1 ]; then
  chown root:nearmesh "$config_dir" "$config"
  chmod 0750 "$config_dir"
  chmod 0640 "$config"
fi

# 4. The unit.
unit_dir="$root/etc/systemd/system"
mkdir -p "$unit_dir"
sed -e "s|@NODE@|$node|g" -e "s|@PREFIX@|$prefix|g" "$src/scripts/systemd/nearmesh.service" >"$unit_dir/nearmesh.service.tmp"
mv "$unit_dir/nearmesh.service.tmp" "$unit_dir/nearmesh.service"

# 5. Enable, and (re)start so an upgrade runs the new code.
if [ "$system" = 1 ]; then
  systemctl daemon-reload
  systemctl enable nearmesh.service
  if [ "$start" = 1 ]; then systemctl restart nearmesh.service; fi
fi
cli="sudo $node $prefix/dist/agent/cli/main.js"
echo "install.sh: nearmesh installed in $prefix; status: systemctl status nearmesh"
echo "install.sh: next: on a device of your mesh run '$cli invite --config /etc/nearmesh/nearmesh.toml', then here '$cli join CODE --config /etc/nearmesh/nearmesh.toml' (or 'invite' here to start a new mesh)"

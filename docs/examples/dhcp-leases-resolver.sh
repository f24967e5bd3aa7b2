#!/bin/sh
# An exec resolver for nearmesh (docs/RESOLVERS.md): tells the agent about every device in a DHCP server's
# lease file, as candidates on nearmesh's port. Use it where the agents sit on several subnets served by one
# dnsmasq (multicast does not cross them, so mDNS cannot find them):
#
#   [[resolvers]]
#   exec = ["/usr/local/bin/dhcp-leases-resolver.sh", "/var/lib/misc/dnsmasq.leases"]
#
# A lease line is "expiry mac ip hostname client-id". Every device is only a candidate: the agent's handshake
# authenticates whoever answers, so a printer on the list costs one refused dial now and then.
LEASES="${1:-/var/lib/misc/dnsmasq.leases}"
PORT="${NEARMESH_PORT:-7450}"
EVERY="${NEARMESH_RESOLVER_EVERY:-30}"

previous=""
while true; do
  current=$(awk -v port="$PORT" '$3 ~ /^[0-9.]+$/ { name = ($4 == "*" ? "" : $4); print $3 ":" port " " name }' "$LEASES" 2>/dev/null | sort -u)
  if [ ! -r "$LEASES" ]; then echo "cannot read $LEASES" >&2; fi
  # Found: in the leases now, not before. Lost: before, not now.
  echo "$current" | while read -r address name; do
    [ -z "$address" ] && continue
    if ! echo "$previous" | grep -q "^$address "; then
      if [ -n "$name" ]; then
        printf '{"found": {"address": "%s", "name": "%s"}}\n' "$address" "$name"
      else
        printf '{"found": {"address": "%s"}}\n' "$address"
      fi
    fi
  done
  echo "$previous" | while read -r address name; do
    [ -z "$address" ] && continue
    echo "$current" | grep -q "^$address " || printf '{"lost": {"address": "%s"}}\n' "$address"
  done
  previous="$current"
  sleep "$EVERY"
done

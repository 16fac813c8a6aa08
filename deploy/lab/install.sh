#!/usr/bin/env bash
# Installs the real servers the integration tests drive (Dovecot with its
# SQLite and PostgreSQL drivers and Pigeonhole's Sieve plugin and
# ManageSieve, BIND9, PostgreSQL, Postfix with its SQLite and PostgreSQL
# maps, mbsync, and Chromium for the Temporal UI test) when missing, then
# checks that every binary and module the tests use is there and fails
# naming what is not. Debian packages; needs root.
set -euo pipefail

# One line per thing the tests use: package, then a shell test that is true
# when it is present. Both the install list and the final check read it.
checks=(
  "dovecot-imapd|command -v dovecot"
  "dovecot-sqlite|test -e /usr/lib/dovecot/modules/libdriver_sqlite.so"
  "dovecot-pgsql|test -e /usr/lib/dovecot/modules/libdriver_pgsql.so"
  "dovecot-sieve|test -e /usr/lib/dovecot/modules/lib90_sieve_plugin.so"
  "dovecot-managesieved|test -x /usr/lib/dovecot/managesieve"
  "bind9|command -v named"
  "bind9-dnsutils|command -v nsupdate"
  "bind9-utils|command -v rndc"
  "isync|command -v mbsync"
  "postgresql|ls /usr/lib/postgresql/*/bin/initdb"
  "postgresql|ls /usr/lib/postgresql/*/bin/postgres"
  "postfix|command -v postmap"
  "postfix-sqlite|postconf -m 2>/dev/null | grep -qx sqlite"
  "postfix-pgsql|postconf -m 2>/dev/null | grep -qx pgsql"
  "chromium|command -v chromium"
)

missing() {
  local line pkg test out=()
  for line in "${checks[@]}"; do
    pkg=${line%%|*}; test=${line#*|}
    bash -c "$test" >/dev/null 2>&1 || out+=("$pkg")
  done
  printf '%s\n' "${out[@]}" | sort -u | grep . || true
}

mapfile -t need < <(missing)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  echo "lab: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

mapfile -t still < <(missing)
if [ ${#still[@]} -gt 0 ]; then
  echo "lab: still missing after install: ${still[*]}" >&2
  for line in "${checks[@]}"; do
    pkg=${line%%|*}; test=${line#*|}
    bash -c "$test" >/dev/null 2>&1 || echo "  $pkg: failed check: $test" >&2
  done
  exit 1
fi

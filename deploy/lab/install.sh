#!/usr/bin/env bash
# Installs the real servers the integration tests drive (Dovecot, BIND9,
# PostgreSQL, Postfix, mbsync, and Chromium for the Temporal UI test) when
# missing. Debian packages; needs root.
set -euo pipefail
need=()
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-imapd)
ls /usr/lib/dovecot/modules/libdriver_sqlite.so >/dev/null 2>&1 || need+=(dovecot-sqlite)
command -v named >/dev/null 2>&1 || need+=(bind9)
command -v nsupdate >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v rndc >/dev/null 2>&1 || need+=(bind9-utils)
command -v mbsync >/dev/null 2>&1 || need+=(isync)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v postmap >/dev/null 2>&1 || need+=(postfix)
postconf -m 2>/dev/null | grep -q sqlite || need+=(postfix-sqlite)
postconf -m 2>/dev/null | grep -q pgsql || need+=(postfix-pgsql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

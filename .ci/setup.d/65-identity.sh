#!/usr/bin/env bash
# What the external identities' tests need (internal/identity/ldap,
# internal/ldaptest and the LDAP tests of the registry server): OpenLDAP's
# slapd and its client tools from Debian. The tests start their own slapd
# on 127.0.0.1 with a private cn=config and data directory; the system
# instance that the package's postinst may configure is never used (and
# policy-rc.d or the missing init keeps it from starting in containers).
# Idempotent and quiet.
set -euo pipefail

need=()
for p in slapd ldap-utils; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

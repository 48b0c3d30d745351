#!/usr/bin/env bash
# The tools the vulnerability database's tests compare lading against
# (internal/version, internal/match): dpkg (Debian's own), apk (run from a
# corpus image in a chroot; the tests need root for it), python3-rpm (rpm's
# version order), python3-packaging (PEP 440), node-semver (npm ranges),
# ruby (Gem::Version) and Maven's ComparableVersion (libmaven3-core-java, with
# a Java runtime), all run through internal/oracle. Tests whose tool is
# missing skip and say which package to install (a failure under
# LADING_CI=1). docker-registry (CNCF Distribution) comes from 10-base.sh.
set -euo pipefail
need=()
for p in dpkg coreutils tar python3-packaging python3-rpm ruby nodejs node-semver libmaven3-core-java; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
if [ ${#need[@]} -gt 0 ]; then
	log=$(mktemp)
	if ! { apt-get -o DPkg::Lock::Timeout=600 update -qq && apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		exit 1
	fi
	rm -f "$log"
fi
# The tests look for node-semver in $LADING_NODE_MODULES, ~/.cache/lading-ci,
# npm's own copy, then /usr/share/nodejs (where node-semver puts it).
test -f /usr/share/nodejs/semver/package.json

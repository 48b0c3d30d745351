#!/usr/bin/env bash
# Tools for the analysis tests, which compare lading's inventory of every
# corpus image with what the real tools report on the merged root
# filesystem: rpm (Debian's rpm reads rpmdb.sqlite and, with its bdb_ro
# backend, Berkeley DB Packages), unzip (pom.properties inside jars),
# python3 (importlib.metadata), npm (npm ls; node and npm are usually there
# already). dpkg-query, GNU tar and the Go toolchain are on the machine.
set -euo pipefail
need=()
for p in rpm unzip python3; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

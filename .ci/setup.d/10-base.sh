#!/usr/bin/env bash
# Packages for the image tests: skopeo and umoci for interop, Debian's
# docker-registry (CNCF Distribution) as a real registry, htpasswd for basic auth,
# docker.io for a real Docker Engine (dockerd) behind the docker-daemon transport.
set -euo pipefail
need=()
for p in skopeo umoci docker-registry apache2-utils docker.io; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

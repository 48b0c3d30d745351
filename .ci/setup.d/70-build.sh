#!/usr/bin/env bash
# What the build tests need (internal/build): Debian's buildah (the
# reference every testdata Dockerfile is built with, chroot isolation),
# umoci (unpacks both images the same way for the tree comparison) and runc
# (RUN steps with --runtime runc); bzip2, xz-utils and zstd compress the
# archives ADD must unpack.
set -euo pipefail
need=()
for p in buildah umoci runc bzip2 xz-utils zstd; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

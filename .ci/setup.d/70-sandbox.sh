#!/usr/bin/env bash
# What the sandbox and container tests need (internal/sandbox, rootfs,
# container, cli): runc (Debian's; the tests run every sandbox test on both
# runtimes), GNU tar (overlaytest unpacks layers with it), umoci and skopeo
# (the committed images are unpacked and copied by them), podman (loads and
# runs a committed image). The tests need root (namespaces, overlayfs); CI
# runs as root.
set -euo pipefail
need=()
for p in runc tar umoci skopeo podman; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	log=$(mktemp)
	if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		exit 1
	fi
	rm -f "$log"
fi

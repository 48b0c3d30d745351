#!/usr/bin/env bash
# What the registry's tests need (internal/registry/...): real clients
# (skopeo, podman, buildah from Debian; crane and oras through the Go module
# proxy), a real PostgreSQL (Debian's package; the tests start their own
# server in a temporary directory), a real S3-compatible server (versitygw,
# through the Go module proxy) and the OCI distribution-spec conformance
# suite, built from its module at a pinned commit (each pin checked against the
# module proxy from an empty module cache). Idempotent and quiet; under
# LADING_CI=1 a test that misses something here fails.
set -euo pipefail

need=()
for p in postgresql podman buildah skopeo; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

bin="$(go env GOBIN)"
[ -n "$bin" ] || bin="$(go env GOPATH)/bin"
mkdir -p "$bin"

# quietly runs a command, showing its output only when it fails.
quietly() {
	local out
	if ! out="$("$@" 2>&1)"; then
		printf '%s\n' "$out" >&2
		return 1
	fi
}

# gotool installs a Go main package at a version as $bin/<name>, unless the
# binary there was already built from that version.
gotool() {
	local name="$1" pkg="$2" version="$3" mod="$4"
	if [ -x "$bin/$name" ] && go version -m "$bin/$name" 2>/dev/null | grep -q "mod[[:space:]]*$mod[[:space:]]*$version"; then
		return 0
	fi
	local tmp
	tmp="$(mktemp -d)"
	quietly env GOBIN="$tmp" GOFLAGS=-mod=mod go install "$pkg@$version"
	mv "$tmp/$(basename "$pkg")" "$bin/$name"
	rm -rf "$tmp"
}

gotool crane github.com/google/go-containerregistry/cmd/crane v0.22.1 github.com/google/go-containerregistry
gotool oras oras.land/oras/cmd/oras v1.3.6 oras.land/oras
gotool versitygw github.com/versity/versitygw/cmd/versitygw v1.8.0 github.com/versity/versitygw
gotool oci-distribution-conformance github.com/opencontainers/distribution-spec/conformance \
	v0.0.0-20260831232431-97274622c111 github.com/opencontainers/distribution-spec/conformance

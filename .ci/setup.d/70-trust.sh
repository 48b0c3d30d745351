#!/usr/bin/env bash
# Tools for the signing and verification tests (internal/trust,
# internal/cli sign/verify): the real cosign and notation CLIs, which sign
# images that lading must accept and verify what lading signs, and
# hyperfine, which times `lading verify` against `cosign verify`.
# Idempotent and quiet: a binary already built from the pinned version is
# kept (cosign takes several minutes to build from a cold cache).
set -euo pipefail

if ! command -v hyperfine >/dev/null 2>&1; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends hyperfine >/dev/null
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

# built reports whether $bin/name was built from module mod at version.
built() {
	[ -x "$bin/$1" ] && go version -m "$bin/$1" 2>/dev/null | grep -Eq "^[[:space:]]*(mod|dep)[[:space:]]+$2[[:space:]]+$3([[:space:]]|\$)"
}

cosign_version=v3.1.3
if ! built cosign github.com/sigstore/cosign/v3 "$cosign_version"; then
	tmp="$(mktemp -d)"
	quietly env GOBIN="$tmp" GOFLAGS=-mod=mod go install "github.com/sigstore/cosign/v3/cmd/cosign@$cosign_version"
	mv "$tmp/cosign" "$bin/cosign"
	rm -rf "$tmp"
fi

# The module proxy will not list notation's versions, so `go install
# ...@v1.3.2` is refused; a throwaway module that requires it builds it.
notation_version=v1.3.2
if ! built notation github.com/notaryproject/notation "$notation_version"; then
	tmp="$(mktemp -d)"
	(
		cd "$tmp"
		quietly go mod init tmp
		quietly env GOFLAGS=-mod=mod go get "github.com/notaryproject/notation@$notation_version"
		quietly env GOFLAGS=-mod=mod go build -o "$tmp/notation" github.com/notaryproject/notation/cmd/notation
	)
	mv "$tmp/notation" "$bin/notation"
	rm -rf "$tmp"
fi

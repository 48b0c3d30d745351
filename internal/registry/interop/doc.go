// Package interop holds the tests that drive lading's registry with real
// clients, and nothing else: skopeo, podman and buildah (Debian packages),
// docker with a real Docker Engine (Debian's docker.io, started by
// internal/dockertest), crane and oras (Go tools), and the OCI
// distribution-spec conformance suite (built from the Go module proxy).
// .ci/setup.d/60-registry.sh installs them (docker.io: 10-base.sh). Each test starts the registry itself, on a loopback port, and skips
// with a message naming what to install when its tool is missing.
//
// lading's own image client (pull and push) is built in parallel with the
// registry; its interop tests belong here once both are merged.
package interop

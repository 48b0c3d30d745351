package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/registry/storage/s3test"
)

// conformanceBinary is the OCI distribution-spec conformance suite, built
// from github.com/opencontainers/distribution-spec/conformance by
// .ci/setup.d/60-registry.sh.
const conformanceBinary = "oci-distribution-conformance"

// withS3Postgres stores blobs in a real S3 server (versitygw) and metadata
// in a real PostgreSQL, both started for the test.
func withS3Postgres(t testing.TB, c *server.Config) {
	s3srv := s3test.Start(t)
	pg := pgtest.Start(t)
	s3c := s3srv.Config(t, "conformance", "lading/")
	c.Storage = server.StorageConfig{Driver: "s3", S3: server.S3Config{
		Endpoint: s3c.Endpoint, Bucket: s3c.Bucket, Prefix: s3c.Prefix, Region: s3c.Region,
		Insecure: true, AccessKey: s3c.AccessKey, SecretKey: s3c.SecretKey,
	}}
	c.Database.URL = pg.NewDatabase(t)
}

var countLine = regexp.MustCompile(`(?m)^\s+(Disabled|Skip|Pass|FAIL|Error|Total)\.+:\s+(\d+)$`)

// TestConformance runs the OCI distribution-spec conformance suite against
// the registry in several configurations. The "1.1" profile is the spec's
// stable defaults; "dev" turns on everything the suite can test (upload
// cancel, digest headers, tag parameters) but sparse manifests, which
// lading refuses by design (a manifest may not name blobs the repository
// lacks). Every test of every profile must pass.
func TestConformance(t *testing.T) {
	bin := tool(t, conformanceBinary)
	for _, tc := range []struct {
		name    string
		version string
		setups  []setup
		creds   bool
		tls     bool
	}{
		{"filesystem+sqlite+no-auth/1.1", "1.1", []setup{withNoAuth}, false, false},
		{"filesystem+sqlite/dev", "dev", nil, true, false},
		{"filesystem+sqlite+tls/dev", "dev", []setup{withTLS}, true, true},
		{"s3+postgres/dev", "dev", []setup{withS3Postgres}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := start(t, tc.setups...)
			dir := t.TempDir()
			env := []string{
				"OCI_REGISTRY=" + reg.host,
				"OCI_TLS=disabled",
				"OCI_VERSION=" + tc.version,
				"OCI_RESULTS_DIR=" + filepath.Join(dir, "results"),
				"OCI_REPO1=conformance/repo1",
				"OCI_REPO2=conformance/repo2",
				"OCI_LOG=error",
			}
			if tc.tls {
				// The suite has no switch to skip verification; Go
				// trusts SSL_CERT_FILE instead of the system roots.
				env = append(env, "OCI_TLS=enabled", "SSL_CERT_FILE="+reg.srv.Config.TLS.Certificate)
			}
			if tc.creds {
				env = append(env, "OCI_USERNAME="+user, "OCI_PASSWORD="+password)
			}
			out, err := tryIn(dir, env, bin)
			counts := map[string]int{}
			for _, m := range countLine.FindAllStringSubmatch(out, -1) {
				counts[m[1]], _ = strconv.Atoi(m[2])
			}
			t.Logf("conformance %s: pass %d, fail %d, error %d, skip %d, disabled %d, total %d",
				tc.name, counts["Pass"], counts["FAIL"], counts["Error"], counts["Skip"], counts["Disabled"], counts["Total"])
			if err != nil || !strings.Contains(out, "OCI Conformance Result: Pass") || counts["FAIL"] != 0 || counts["Error"] != 0 || counts["Total"] == 0 {
				report, _ := os.ReadFile(filepath.Join(dir, "results", "junit.xml"))
				t.Fatalf("conformance failed (%v):\n%s\n%s", err, out, failures(string(report)))
			}
			if counts["Skip"] != 0 {
				t.Errorf("%d tests skipped as unsupported:\n%s", counts["Skip"], out)
			}
			if want := map[string]int{"1.1": 2, "dev": 0}[tc.version]; counts["Disabled"] != want {
				t.Errorf("%d tests disabled, want %d (the profile's own)", counts["Disabled"], want)
			}
		})
	}
}

// failures picks the failed test cases out of a JUnit report.
func failures(junit string) string {
	var b strings.Builder
	for _, c := range strings.Split(junit, "<testcase") {
		if strings.Contains(c, "<failure") || strings.Contains(c, "<error") {
			fmt.Fprintf(&b, "<testcase%.2000s\n", c)
		}
	}
	return b.String()
}

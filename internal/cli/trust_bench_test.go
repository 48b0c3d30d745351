package cli

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/testenv"
)

// BenchmarkVerifyVsCosign times `lading verify` and `cosign verify`, both
// as processes, on the same image and key in a registry on loopback
// (lading serve), in the same run, alternating: the figure that counts is
// the ratio. Each format is signed by cosign itself.
//
//	go test -run '^$' -bench VerifyVsCosign -benchtime 20x ./internal/cli/
func BenchmarkVerifyVsCosign(b *testing.B) {
	cosign := testenv.Tool(b, "cosign", "github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 (.ci/setup.d/70-trust.sh)")
	dir := b.TempDir()
	bin := filepath.Join(dir, "lading")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lading-dev/lading/cmd/lading").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	host := startLadingRegistry(b)
	env := cosignEnv(b)
	mustTool(b, env, cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")

	for _, f := range []struct{ name, flag string }{{"legacy", "--new-bundle-format=false"}, {"bundle", "--new-bundle-format=true"}} {
		b.Run(f.name, func(b *testing.B) {
			_, pinned := pushRandom(b, host, "bench-"+f.name)
			mustTool(b, env, cosign, "sign", "--key", key, "--tlog-upload=false", "--use-signing-config=false", "--allow-http-registry", f.flag, pinned)
			ladingArgs := []string{"--root", b.TempDir(), "verify", "--insecure", "--key", pub, pinned}
			cosignArgs := []string{"verify", "--key", pub, "--insecure-ignore-tlog=true", "--allow-http-registry", f.flag, pinned}
			var tl, tc time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				mustTool(b, env, bin, ladingArgs...)
				tl += time.Since(start)
				start = time.Now()
				mustTool(b, env, cosign, cosignArgs...)
				tc += time.Since(start)
			}
			n := float64(b.N)
			b.ReportMetric(float64(tl.Microseconds())/n/1000, "lading-ms/op")
			b.ReportMetric(float64(tc.Microseconds())/n/1000, "cosign-ms/op")
			b.ReportMetric(float64(tl)/float64(tc), "lading/cosign")
		})
	}
}

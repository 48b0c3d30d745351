package build_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/build"
	"github.com/lading-dev/lading/internal/sandbox"
	"github.com/lading-dev/lading/internal/store"
)

// The helper process: when LADING_BUILD_HELPER is set, TestMain builds the
// context it names into the store it names and prints the result as JSON,
// so that a test can measure the process's peak RSS and interrupt it.
const helperEnv = "LADING_BUILD_HELPER"

type helperReq struct {
	Root      string
	Context   string
	Tag       string
	BuildArgs map[string]string
}

type helperRes struct {
	ID   string
	Made int
	Err  string
}

func TestMain(m *testing.M) {
	sandbox.MaybeInit() // RUN steps' sandboxes start this binary as their init
	if os.Getenv(helperEnv) != "" {
		os.Exit(helper())
	}
	os.Exit(m.Run())
}

func helper() int {
	var req helperReq
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &req); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := helperRes{}
	err := func() error {
		st, err := store.Open(req.Root)
		if err != nil {
			return err
		}
		defer st.Close()
		in, err := build.OpenInput(ctx, req.Context, "", nil, req.Root)
		if err != nil {
			return err
		}
		defer in.Close()
		runner, err := build.NewRunner("native", filepath.Join(req.Root, "layers"), nil)
		if err != nil {
			return err
		}
		r, err := build.New(st, build.WithTempDir(req.Root), build.WithBuildArgs(req.BuildArgs), build.WithRunner(runner)).Build(ctx, in.Dockerfile, in.Context)
		if err != nil {
			return err
		}
		res.ID, res.Made = r.ID.String(), r.Made
		return st.SetRef(ctx, req.Tag, r.Descriptor)
	}()
	if err != nil {
		res.Err = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(res)
	if err != nil {
		return 1
	}
	return 0
}

// helperCmd returns the command that builds ctxDir into root.
func helperCmd(t testing.TB, root, ctxDir string, args ...map[string]string) *exec.Cmd {
	hr := helperReq{Root: root, Context: ctxDir, Tag: "example.com/heavy:1"}
	if len(args) > 0 {
		hr.BuildArgs = args[0]
	}
	req, _ := json.Marshal(hr)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(req))
	cmd.Stderr = os.Stderr
	return cmd
}

// runHelper runs a build in a child process and returns its result and
// peak RSS in MiB.
func runHelper(t *testing.T, root, ctxDir string) (helperRes, int64) {
	t.Helper()
	cmd := helperCmd(t, root, ctxDir)
	out, err := cmd.Output()
	var res helperRes
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("helper: %v %v: %s", err, jerr, out)
	}
	if res.Err != "" {
		t.Fatalf("build: %s", res.Err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return res, ru.Maxrss / 1024
}

// TestMillionFiles builds `COPY . /big/` of a context of a million files
// (1000 directories of 1000) in a child process: memory stays bounded by
// the directories, not the files (peak RSS is logged and must stay under
// 200 MiB).
func TestMillionFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: a million files (skipped with -short)")
	}
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "ctx")
	start := time.Now()
	must(t, os.MkdirAll(ctxDir, 0o755))
	must(t, os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY . /big/\n"), 0o644))
	for i := 0; i < 1000; i++ {
		d := filepath.Join(ctxDir, fmt.Sprintf("d%03d", i))
		must(t, os.Mkdir(d, 0o755))
		for j := 0; j < 1000; j++ {
			f, err := os.Create(filepath.Join(d, fmt.Sprintf("f%03d", j)))
			must(t, err)
			f.Close()
		}
	}
	t.Logf("generated 1e6 files in %v", time.Since(start).Round(time.Millisecond))
	root := filepath.Join(dir, "root")
	start = time.Now()
	res, rss := runHelper(t, root, ctxDir)
	t.Logf("build: %v, peak RSS %d MiB, %d layers made", time.Since(start).Round(time.Millisecond), rss, res.Made)
	if res.Made != 1 {
		t.Errorf("made %d layers", res.Made)
	}
	if rss > 200 {
		t.Errorf("peak RSS %d MiB for a million files", rss)
	}
}

// TestHugeFile builds `COPY big.img /` of a 10 GiB sparse file in a child
// process: the file is streamed (peak RSS logged, must stay under 100
// MiB). Then the same build is interrupted with SIGINT while it copies,
// and once more with SIGKILL: neither leaves an image, a temporary file
// outside the store's ingest directory, or a mount; after SIGINT the
// ingest directory is empty too, after SIGKILL `prune` empties it.
func TestHugeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy: a 10 GiB file (skipped with -short)")
	}
	dir := t.TempDir()
	ctxDir := filepath.Join(dir, "ctx")
	must(t, os.MkdirAll(ctxDir, 0o755))
	must(t, os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY big.img /big.img\n"), 0o644))
	f, err := os.Create(filepath.Join(ctxDir, "big.img"))
	must(t, err)
	must(t, f.Truncate(10<<30))
	f.WriteAt([]byte("end"), 10<<30-3)
	f.Close()

	root := filepath.Join(dir, "root")
	start := time.Now()
	res, rss := runHelper(t, root, ctxDir)
	t.Logf("10 GiB file: %v, peak RSS %d MiB", time.Since(start).Round(time.Millisecond), rss)
	if res.Made != 1 {
		t.Errorf("made %d layers", res.Made)
	}
	if rss > 100 {
		t.Errorf("peak RSS %d MiB for a 10 GiB file", rss)
	}

	// Interrupt a build of a 2 GiB file while it writes its layer.
	must(t, os.Truncate(filepath.Join(ctxDir, "big.img"), 2<<30))
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			cmd := helperCmd(t, root, ctxDir)
			must(t, cmd.Start())
			// Wait until the layer is being written, then interrupt.
			deadline := time.Now().Add(5 * time.Minute)
			for !ingesting(root, 64<<20) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("the build never started writing its layer")
				}
				time.Sleep(50 * time.Millisecond)
			}
			must(t, cmd.Process.Signal(sig))
			err := cmd.Wait()
			if err == nil {
				t.Fatal("the interrupted build succeeded")
			}
			st, err := store.Open(root)
			must(t, err)
			defer st.Close()
			idx, err := st.Index(context.Background())
			must(t, err)
			if len(idx.Manifests) != 0 {
				t.Errorf("an interrupted build left images: %v", idx.Manifests)
			}
			if left := leftovers(t, root); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if m := mountsUnder(t, root); len(m) > 0 {
				t.Errorf("mounts left: %v", m)
			}
			if sig == syscall.SIGKILL {
				if _, err := st.Prune(context.Background(), false); err != nil {
					t.Fatal(err)
				}
			}
			if n := entries(t, filepath.Join(root, "ingest")); n != 0 {
				t.Errorf("%d files in ingest/ after %v", n, sig)
			}
		})
	}
}

// ingesting reports whether a temp blob in root's ingest/ has reached n
// bytes.
func ingesting(root string, n int64) bool {
	es, _ := os.ReadDir(filepath.Join(root, "ingest"))
	for _, e := range es {
		if fi, err := e.Info(); err == nil && fi.Size() >= n {
			return true
		}
	}
	return false
}

// leftovers lists what a build may leave in root besides the store's own
// files: temporary contexts and unpacked stages.
func leftovers(t *testing.T, root string) []string {
	es, err := os.ReadDir(root)
	must(t, err)
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), "lading-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func entries(t *testing.T, dir string) int {
	es, err := os.ReadDir(dir)
	must(t, err)
	return len(es)
}

// mountsUnder lists mount points below dir.
func mountsUnder(t *testing.T, dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	must(t, err)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

var _ = v1.Hash{}

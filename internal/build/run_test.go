package build_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/build"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/sandbox"
	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/testenv"
)

// runners returns the RUN runners to test: lading's own sandbox, and runc.
func runners(t *testing.T, layers string) map[string]build.Runner {
	t.Helper()
	testenv.Root(t, "RUN steps run in a sandbox, which needs root here")
	out := map[string]build.Runner{}
	for _, rt := range []string{"native", "runc"} {
		if rt == "runc" {
			testenv.Tool(t, "runc", "runc")
		}
		r, err := build.NewRunner(rt, layers, nil)
		must(t, err)
		out[rt] = r
	}
	return out
}

const runDockerfile = `ARG BASE
FROM $BASE
ARG WHO=builder
ENV GREETING=hello
RUN echo "$GREETING $WHO" > /greeting && id -u > /uid-root
RUN ["/bin/sh", "-c", "echo exec > /exec-form"]
RUN <<EOF
echo plain heredoc > /heredoc-plain
EOF
RUN <<EOF
#!/bin/sh
echo "script $0" > /heredoc-script
EOF
RUN rm -rf /etc/apk /bin/ls && mkdir /etc/apk && echo new > /etc/apk/world
RUN --mount=type=bind,source=ctx.txt,target=/mnt/ctx.txt cp /mnt/ctx.txt /from-bind
RUN --mount=type=cache,target=/cache echo run >> /cache/count && wc -l < /cache/count > /cache-lines
WORKDIR /work
USER 1000:1000
RUN id -u > /tmp/uid-user && pwd > /tmp/pwd
USER root
SHELL ["/bin/sh", "-ec"]
RUN test -f /tmp/uid-user
RUN true
`

// TestRun builds RUN steps on the corpus's alpine with each runtime: shell
// and exec forms, heredocs (a script with a shebang and a plain one), ARG
// and ENV in the environment and the history, USER, WORKDIR, SHELL, bind
// and cache mounts, and a step that removes files (whiteouts in the layer).
func TestRun(t *testing.T) {
	base := corpustest.Image(t, "alpine-3.9.oci.tar")
	args := map[string]string{"BASE": "oci-archive:" + base}
	root := filepath.Join(t.TempDir(), "root")
	for name, r := range runners(t, filepath.Join(root, "layers")) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"Dockerfile": runDockerfile, "ctx.txt": "from the context\n"})
			st, err := store.Open(root)
			must(t, err)
			defer st.Close()
			var out bytes.Buffer
			res, err := testBuild(t, st, dir, build.WithRunner(r), build.WithOutput(&out), build.WithBuildArgs(args), build.WithNoCache(true))
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			fsys := exportTree(t, res)
			for p, want := range map[string]string{
				"greeting": "hello builder\n", "uid-root": "0\n", "exec-form": "exec\n",
				"heredoc-plain": "plain heredoc\n", "heredoc-script": "script /dev/pipes/EOF\n",
				"etc/apk/world": "new\n", "from-bind": "from the context\n",
				"tmp/uid-user": "1000\n", "tmp/pwd": "/work\n",
			} {
				if got, ok := fsys[p]; !ok || got != want {
					t.Errorf("%s: %q, want %q", p, got, want)
				}
			}
			for _, gone := range []string{"bin/ls", "etc/apk/keys", "mnt/ctx.txt", "cache/count", "dev/pipes"} {
				if _, ok := fsys[gone]; ok {
					t.Errorf("%s is in the image", gone)
				}
			}
			// The removal step's layer has whiteouts for what it removed.
			var names []string
			for _, h := range layerHeaders(t, res, 5) {
				names = append(names, h.Name)
			}
			for _, w := range []string{"bin/.wh.ls", "etc/apk/world"} {
				if !contains(names, w) {
					t.Errorf("rm layer lacks %s: %v", w, names)
				}
			}
			c := configOf(t, res)
			var runs []string
			for _, h := range c.History {
				if strings.HasPrefix(h.CreatedBy, "RUN ") {
					runs = append(runs, h.CreatedBy)
				}
			}
			if want := `RUN |1 WHO=builder /bin/sh -c echo "$GREETING $WHO" > /greeting && id -u > /uid-root # buildkit`; runs[0] != want {
				t.Errorf("history: %q, want %q", runs[0], want)
			}
			if last := c.History[len(c.History)-1]; !last.EmptyLayer {
				t.Errorf("RUN true made a layer: %+v", last)
			}
			// A rebuild runs nothing.
			res2, err := testBuild(t, st, dir, build.WithRunner(r), build.WithBuildArgs(args))
			must(t, err)
			if res2.Made != 0 || res2.ID != res.ID {
				t.Errorf("rebuild made %d layers", res2.Made)
			}
		})
	}
}

// TestRunFails: a failing command fails the build with its exit code and
// the Dockerfile line; nothing is left in ingest/ and nothing is mounted.
func TestRunFails(t *testing.T) {
	base := corpustest.Image(t, "alpine-3.9.oci.tar")
	root := filepath.Join(t.TempDir(), "root")
	r := runners(t, filepath.Join(root, "layers"))["native"]
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo partial > /x && exit 3\n"})
	st, err := store.Open(root)
	must(t, err)
	defer st.Close()
	_, err = testBuild(t, st, dir, build.WithRunner(r), build.WithBuildArgs(map[string]string{"BASE": "oci-archive:" + base}))
	var ee *build.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || !strings.Contains(err.Error(), "Dockerfile:3:") {
		t.Fatalf("error %v", err)
	}
	if n := entries(t, filepath.Join(root, "ingest")); n != 0 {
		t.Errorf("%d files left in ingest/", n)
	}
	if m := mountsUnder(t, root); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// exportTree returns the image's merged file system as path -> content
// (regular files; "" for other entries), through lading's export.
func exportTree(t *testing.T, res *build.Result) map[string]string {
	t.Helper()
	ls, err := res.Image.Layers()
	must(t, err)
	var srcs []layer.Source
	for i, l := range ls {
		l := l
		srcs = append(srcs, layer.Source{Name: fmt.Sprintf("layer %d", i), Open: func(context.Context) (io.ReadCloser, error) { return l.Uncompressed() }})
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(layer.Export(context.Background(), pw, srcs, layer.AllowDevices(), layer.WithTempDir(t.TempDir())))
	}()
	out := map[string]string{}
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		b, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(h.Name, "/")] = string(b)
	}
}

// TestRunReproducible builds RUN steps twice, into two fresh roots, with
// SOURCE_DATE_EPOCH: the digests are equal (files the steps made, and the
// directories they changed, are clamped to the epoch).
func TestRunReproducible(t *testing.T) {
	base := corpustest.Image(t, "alpine-3.9.oci.tar")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN mkdir -p /out && echo x > /out/x && rm /etc/motd && ln -s x /out/l\nRUN touch /etc/new\n"})
	var ids []string
	for i := 0; i < 2; i++ {
		root := filepath.Join(t.TempDir(), "root")
		r := runners(t, filepath.Join(root, "layers"))["native"]
		st, err := store.Open(root)
		must(t, err)
		res, err := testBuild(t, st, dir, build.WithRunner(r), build.WithSourceDateEpoch(time.Unix(1704067200, 0)),
			build.WithBuildArgs(map[string]string{"BASE": "oci-archive:" + base}))
		st.Close()
		must(t, err)
		ids = append(ids, res.Descriptor.Digest.String())
		time.Sleep(1100 * time.Millisecond)
	}
	if ids[0] != ids[1] {
		t.Errorf("two builds with RUN differ: %v", ids)
	}
}

// TestRunLimits runs RUN steps under --pids-limit and --memory with each
// runtime: a step that starts more processes than the limit fails, one
// that grows past the memory limit is killed, and the host keeps neither.
func TestRunLimits(t *testing.T) {
	base := corpustest.Image(t, "alpine-3.9.oci.tar")
	args := map[string]string{"BASE": "oci-archive:" + base}
	root := filepath.Join(t.TempDir(), "root")
	layers := filepath.Join(root, "layers")
	testenv.Root(t, "resource limits are cgroups, which need root here")
	for _, rt := range []string{"native", "runc"} {
		if rt == "runc" {
			testenv.Tool(t, "runc", "runc")
		}
		r, err := build.NewRunner(rt, layers, nil, build.WithLimits(sandbox.Limits{Pids: 16, Memory: 64 << 20}))
		must(t, err)
		for _, tc := range []struct{ name, run string }{
			// The loop stops at the first fork the limit refuses; the
			// step fails with the number started.
			{"pids", `RUN i=0; while [ $i -lt 64 ]; do sleep 30 & i=$((i+1)); done; echo "$i started"`},
			// ulimit -v is a safety net should the cgroup not hold.
			{"memory", `RUN ulimit -v 1048576; awk 'BEGIN { s = "x"; while (1) s = s s }'`},
			{"within the limits", `RUN i=0; while [ $i -lt 4 ]; do sleep 0 & i=$((i+1)); done; wait; head -c 8m /dev/zero | wc -c > /n`},
		} {
			t.Run(rt+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				writeFiles(t, dir, map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" + tc.run + "\n"})
				st, err := store.Open(root)
				must(t, err)
				defer st.Close()
				var out bytes.Buffer
				_, err = testBuild(t, st, dir, build.WithRunner(r), build.WithOutput(&out), build.WithBuildArgs(args), build.WithNoCache(true))
				var ee *build.ExitError
				switch {
				case tc.name == "within the limits" && err != nil:
					t.Fatalf("a step within the limits failed: %v\n%s", err, out.String())
				case tc.name != "within the limits" && !errors.As(err, &ee):
					t.Fatalf("the step was not stopped by the %s limit: %v\n%s", tc.name, err, out.String())
				case tc.name == "memory" && ee.Code != 137:
					t.Errorf("exit code %d, want 137 (killed by the memory limit)\n%s", ee.Code, out.String())
				}
				if m := mountsUnder(t, root); len(m) > 0 {
					t.Errorf("mounts left: %v", m)
				}
			})
		}
	}
}

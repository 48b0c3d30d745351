package build_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/lading-dev/lading/internal/build"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/store"
	"github.com/lading-dev/lading/internal/testenv"
)

// writeFiles writes a context: name -> content ("->target" makes a
// symlink, a name ending in "/" a directory).
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		switch {
		case strings.HasSuffix(name, "/"):
			must(t, os.MkdirAll(p, 0o755))
		case strings.HasPrefix(content, "->"):
			must(t, os.Symlink(strings.TrimPrefix(content, "->"), p))
		default:
			must(t, os.WriteFile(p, []byte(content), 0o644))
		}
	}
}

// testBuild builds the context dir into st (a fresh store when nil).
func testBuild(t *testing.T, st *store.Store, dir string, opts ...build.Option) (*build.Result, error) {
	t.Helper()
	if st == nil {
		var err error
		st, err = store.Open(filepath.Join(t.TempDir(), "root"))
		must(t, err)
		t.Cleanup(func() { st.Close() })
	}
	ctx := context.Background()
	in, err := build.OpenInput(ctx, dir, "", nil, t.TempDir())
	if err != nil {
		return nil, err
	}
	defer in.Close()
	opts = append([]build.Option{build.WithTempDir(t.TempDir())}, opts...)
	return build.New(st, opts...).Build(ctx, in.Dockerfile, in.Context)
}

func configOf(t *testing.T, res *build.Result) dockerspec.DockerOCIImage {
	t.Helper()
	raw, err := res.Image.RawConfigFile()
	must(t, err)
	var c dockerspec.DockerOCIImage
	must(t, json.Unmarshal(raw, &c))
	return c
}

// layerEntries lists the entries of the image's last layer as "name mode
// uid:gid size mtime".
func layerHeaders(t *testing.T, res *build.Result, n int) []*tar.Header {
	t.Helper()
	ls, err := res.Image.Layers()
	must(t, err)
	if n < 0 {
		n += len(ls)
	}
	rc, err := ls[n].Uncompressed()
	must(t, err)
	defer rc.Close()
	var out []*tar.Header
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		must(t, err)
		out = append(out, h)
	}
}

// TestConfigAndHistory checks the config and history every config
// instruction writes against what BuildKit writes for them (its
// dispatch functions' strings and fields).
func TestConfigAndHistory(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.txt": "a",
		"Dockerfile": `FROM scratch
ARG V=1.0
ENV APP=demo PATH=/app/bin:$PATH
LABEL version=$V "quoted key"="a b"
MAINTAINER someone@example.com
COPY a.txt /app/
WORKDIR /app/sub
USER 1000:1000
EXPOSE 8080 53/udp 9000-9001
VOLUME ["/data", "/logs"]
SHELL ["/bin/bash", "-c"]
ENTRYPOINT ["/app/bin/run"]
CMD serve $APP
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=2 CMD curl -f http://localhost/ || exit 1
STOPSIGNAL SIGQUIT
ONBUILD COPY . /onbuild/
`,
	})
	res, err := testBuild(t, nil, dir, build.WithSourceDateEpoch(time.Unix(1704067200, 0)))
	must(t, err)
	c := configOf(t, res)
	cfg := c.Config
	want := dockerspec.DockerOCIImageConfig{}
	want.Env = []string{"PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP=demo"}
	want.User = "1000:1000"
	want.WorkingDir = "/app/sub"
	want.Labels = map[string]string{"version": "1.0", "quoted key": "a b"}
	want.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {}}
	want.Volumes = map[string]struct{}{"/data": {}, "/logs": {}}
	want.Entrypoint = []string{"/app/bin/run"}
	want.Cmd = []string{"/bin/bash", "-c", "serve $APP"}
	want.StopSignal = "SIGQUIT"
	want.Shell = []string{"/bin/bash", "-c"}
	want.OnBuild = []string{"COPY . /onbuild/"}
	want.ArgsEscaped = true //nolint:staticcheck
	want.Healthcheck = &dockerspec.HealthcheckConfig{
		Test:     []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"},
		Interval: 30 * time.Second, Timeout: 3 * time.Second, StartPeriod: 5 * time.Second, Retries: 2,
	}
	if d := cmp.Diff(want, cfg); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
	if c.Author != "someone@example.com" || c.OS == "" || c.Architecture == "" {
		t.Errorf("author %q os %q arch %q", c.Author, c.OS, c.Architecture)
	}
	var got []string
	for _, h := range c.History {
		s := h.CreatedBy
		if h.EmptyLayer {
			s += " (empty)"
		}
		if h.Comment != "buildkit.dockerfile.v0" || h.Created == nil || !h.Created.Equal(time.Unix(1704067200, 0)) {
			t.Errorf("history %q: comment %q created %v", h.CreatedBy, h.Comment, h.Created)
		}
		got = append(got, s)
	}
	wantHistory := []string{
		"ARG V=1.0 (empty)",
		"ENV APP=demo PATH=/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin (empty)",
		"LABEL version=1.0 quoted key=a b (empty)",
		"MAINTAINER someone@example.com (empty)",
		"COPY a.txt /app/ # buildkit",
		"WORKDIR /app/sub",
		"USER 1000:1000 (empty)",
		"EXPOSE 53/udp 8080/tcp 9000/tcp 9001/tcp (empty)",
		"VOLUME [/data /logs] (empty)",
		"SHELL [/bin/bash -c] (empty)",
		`ENTRYPOINT ["/app/bin/run"] (empty)`,
		`CMD ["/bin/bash" "-c" "serve $APP"] (empty)`,
		"HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/ || exit 1] Interval:30s Timeout:3s StartPeriod:5s StartInterval:0s Retries:2} (empty)",
		"STOPSIGNAL SIGQUIT (empty)",
	}
	if d := cmp.Diff(wantHistory, got); d != "" {
		t.Errorf("history (-want +got):\n%s", d)
	}
	if !c.Created.Equal(time.Unix(1704067200, 0)) {
		t.Errorf("created %v", c.Created)
	}
}

// TestReproducible builds the same context into two fresh roots, the
// second time with every file touched and the Dockerfile's base pulled
// again, with SOURCE_DATE_EPOCH: the image digests are equal, and every
// time in the new layers is at most the epoch.
func TestReproducible(t *testing.T) {
	base := corpustest.Image(t, "alpine-3.9.oci.tar")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE
COPY . /src/
ADD files.tar /unpacked/
WORKDIR /work/dir
COPY <<EOF /work/inline.txt
inline $BASE
EOF
ENV X=1
`,
		"a/b/c.txt": "c",
		"link":      "->a/b/c.txt",
	})
	writeTar(t, filepath.Join(dir, "files.tar"), false)
	epoch := time.Unix(1704067200, 0)
	args := map[string]string{"BASE": "oci-archive:" + base}
	r1, err := testBuild(t, nil, dir, build.WithBuildArgs(args), build.WithSourceDateEpoch(epoch))
	must(t, err)
	future := time.Now().Add(48 * time.Hour)
	filepathWalk(t, dir, func(p string) { os.Chtimes(p, future, future) })
	time.Sleep(1100 * time.Millisecond) // the build's own clock moves on too
	r2, err := testBuild(t, nil, dir, build.WithBuildArgs(args), build.WithSourceDateEpoch(epoch))
	must(t, err)
	if r1.Descriptor.Digest != r2.Descriptor.Digest {
		t.Fatalf("two builds differ: %s and %s", r1.Descriptor.Digest, r2.Descriptor.Digest)
	}
	ls, _ := r1.Image.Layers()
	for i := 1; i < len(ls); i++ {
		for _, h := range layerHeaders(t, r1, i) {
			if h.ModTime.After(epoch) {
				t.Errorf("layer %d: %s: time %v after SOURCE_DATE_EPOCH", i, h.Name, h.ModTime)
			}
			if h.Uname != "" || h.Gname != "" {
				t.Errorf("layer %d: %s: owner names %q %q", i, h.Name, h.Uname, h.Gname)
			}
		}
	}
	c := configOf(t, r1)
	if !c.Created.Equal(epoch) {
		t.Errorf("config created %v, want %v", c.Created, epoch)
	}
}

func filepathWalk(t *testing.T, dir string, fn func(string)) {
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			fn(p)
		}
		return nil
	})
}

// TestCache: a rebuild with nothing changed makes no layer and gives the
// same image; touching a file (only its time changes) still hits; changing
// a file's content misses from that step on.
func TestCache(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\nENV X=1\nCOPY b.txt /b.txt\nLABEL l=1\n",
		"a.txt":      "a", "b.txt": "b",
	})
	st, err := store.Open(filepath.Join(t.TempDir(), "root"))
	must(t, err)
	defer st.Close()
	r1, err := testBuild(t, st, dir)
	must(t, err)
	if r1.Made != 2 {
		t.Errorf("first build made %d layers, want 2", r1.Made)
	}
	r2, err := testBuild(t, st, dir)
	must(t, err)
	if r2.Made != 0 || r2.Cached != 2 || r2.ID != r1.ID {
		t.Errorf("rebuild: made %d cached %d, id %s vs %s", r2.Made, r2.Cached, r2.ID, r1.ID)
	}
	later := time.Now().Add(time.Hour)
	must(t, os.Chtimes(filepath.Join(dir, "a.txt"), later, later))
	r3, err := testBuild(t, st, dir)
	must(t, err)
	if r3.Made != 0 || r3.ID != r1.ID {
		t.Errorf("after touch: made %d, id changed %v", r3.Made, r3.ID != r1.ID)
	}
	must(t, os.WriteFile(filepath.Join(dir, "b.txt"), []byte("B"), 0o644))
	r4, err := testBuild(t, st, dir)
	must(t, err)
	if r4.Made != 1 || r4.Cached != 1 {
		t.Errorf("after a change: made %d cached %d, want 1 and 1", r4.Made, r4.Cached)
	}
	r5, err := testBuild(t, st, dir, build.WithNoCache(true))
	must(t, err)
	if r5.Made != 2 || r5.Cached != 0 {
		t.Errorf("--no-cache: made %d cached %d", r5.Made, r5.Cached)
	}
}

// TestUnneededStagesSkipped: a stage the target does not need is never
// built, not even its FROM resolved.
func TestUnneededStagesSkipped(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `FROM oci-archive:/nonexistent/image.tar AS broken
COPY missing /

FROM scratch AS files
COPY a.txt /a.txt

FROM scratch
COPY --from=files /a.txt /copied.txt
`,
		"a.txt": "a",
	})
	res, err := testBuild(t, nil, dir)
	must(t, err)
	hs := layerHeaders(t, res, -1)
	if len(hs) != 1 || hs[0].Name != "copied.txt" {
		t.Errorf("layer: %v", hs)
	}
	_, err = testBuild(t, nil, dir, build.WithTarget("broken"))
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:1:") {
		t.Errorf("target broken: %v", err)
	}
	_, err = testBuild(t, nil, dir, build.WithTarget("nope"))
	if err == nil || !strings.Contains(err.Error(), `target stage "nope" could not be found`) {
		t.Errorf("unknown target: %v", err)
	}
}

// TestBadInput: syntax errors, unknown instructions and flags give
// BuildKit's messages with the file and line; paths outside the context
// are refused.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile string
		files            map[string]string
		want             string
	}{
		{"unknown instruction", "FROM scratch\nCOPY a.txt /\nFOO bar\n", nil, "Dockerfile:3: dockerfile parse error on line 3: unknown instruction: FOO (did you mean FROM?)"},
		{"unknown flag", "FROM scratch\nCOPY --bogus=1 a.txt /\n", nil, "Dockerfile:2: dockerfile parse error on line 2: unknown flag: --bogus"},
		{"unterminated heredoc", "FROM scratch\nRUN <<EOF\necho\n", nil, "Dockerfile:2:"},
		{"missing argument", "FROM scratch\n\nENV\n", nil, "Dockerfile:3: dockerfile parse error on line 3: ENV requires at least one argument"},
		{"no FROM", "COPY a.txt /\n", nil, "no build stage in current context"},
		{"continuation", "FROM scratch\nCOPY \\\n  a.txt \\\n  nothere /\n", nil, `Dockerfile:2: "nothere": not found in the build context`},
		{"parent path", "FROM scratch\nCOPY ../../etc/passwd /\n", nil, "Dockerfile:2: ../../etc/passwd: forbidden path outside the build context"},
		{"absolute names the context", "FROM scratch\nCOPY /etc/passwd /\n", nil, `"etc/passwd": not found in the build context`},
		{"symlink out absolute", "FROM scratch\nCOPY out /\n", map[string]string{"out": "->/etc/passwd"}, "points outside the build context"},
		{"symlink out relative", "FROM scratch\nCOPY up /x\n", map[string]string{"up": "->../../../../../../etc/passwd"}, "outside the build context"},
		{"symlink dir out", "FROM scratch\nCOPY d/passwd /x\n", map[string]string{"d": "->/etc"}, "outside the build context"},
		{"ignored file", "FROM scratch\nCOPY secret.txt /\n", map[string]string{".dockerignore": "secret.txt\n", "secret.txt": "s"}, "excluded by .dockerignore"},
		{"bad chmod", "FROM scratch\nCOPY --chmod=999 a.txt /\n", nil, "invalid chmod parameter"},
		{"bad signal", "FROM scratch\nSTOPSIGNAL SIGNOPE\n", nil, "Dockerfile:2: invalid signal: SIGNOPE"},
		{"remote ADD", "FROM scratch\nADD https://example.com/x.tar /\n", nil, "lading builds without network access"},
		{"unknown user", "FROM scratch\nCOPY --chown=alice a.txt /\n", nil, "unable to find user alice"},
		{"base not found", "FROM oci-archive:/nonexistent.tar\n", nil, "Dockerfile:1: FROM oci-archive:/nonexistent.tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{"Dockerfile": tc.dockerfile, "a.txt": "a"}
			for k, v := range tc.files {
				files[k] = v
			}
			writeFiles(t, dir, files)
			_, err := testBuild(t, nil, dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !errdefs.IsInvalidArgument(err) && !errdefs.IsNotFound(err) {
				t.Errorf("error class of %v", err)
			}
		})
	}
}

// TestCopySemantics checks COPY and ADD where Docker's rules are subtle:
// the layer's entries for sources and destinations.
func TestCopySemantics(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `FROM scratch
COPY a.txt b.txt /many/
COPY dir /single-dir
COPY dir/ /trailing/
COPY *.txt /glob/
COPY nomatch* /empty-glob/
COPY --exclude=*.log dir /excluded
COPY a.txt /renamed.txt
COPY <<EOF <<EOT /heredocs/
one
EOF
two
EOT
COPY --link --chown=5:6 a.txt /linked/deep/a.txt
`,
		"a.txt": "a", "b.txt": "b",
		"dir/x":     "x",
		"dir/y.log": "y",
	})
	res, err := testBuild(t, nil, dir)
	must(t, err)
	ls, err := res.Image.Layers()
	must(t, err)
	var all []string
	for i := range ls {
		for _, h := range layerHeaders(t, res, i) {
			all = append(all, h.Name)
		}
	}
	want := []string{
		"many/", "many/a.txt", "many/b.txt",
		"single-dir/", "single-dir/x", "single-dir/y.log",
		"trailing/", "trailing/x", "trailing/y.log",
		"glob/", "glob/a.txt", "glob/b.txt",
		"excluded/", "excluded/x",
		"renamed.txt",
		"heredocs/", "heredocs/EOF", "heredocs/EOT",
		"linked/", "linked/deep/", "linked/deep/a.txt",
	}
	if d := cmp.Diff(want, all); d != "" {
		t.Errorf("layers (-want +got):\n%s", d)
	}
	for _, h := range layerHeaders(t, res, -1) {
		if h.Uid != 5 || h.Gid != 6 {
			t.Errorf("--chown with --link: %s is %d:%d", h.Name, h.Uid, h.Gid)
		}
	}
}

// TestOnbuild: a base image's ONBUILD triggers run first in a stage built
// FROM it, and are not inherited further.
func TestOnbuild(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "root"))
	must(t, err)
	defer st.Close()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM scratch\nONBUILD COPY a.txt /from-trigger.txt\nCOPY a.txt /base.txt\n",
		"a.txt":      "a",
	})
	r1, err := testBuild(t, st, dir)
	must(t, err)
	must(t, st.SetRef(context.Background(), "example.com/onbuild:1", r1.Descriptor))
	dir2 := t.TempDir()
	writeFiles(t, dir2, map[string]string{
		"Dockerfile": "FROM example.com/onbuild:1\nLABEL x=y\n",
		"a.txt":      "child",
	})
	r2, err := testBuild(t, st, dir2)
	must(t, err)
	hs := layerHeaders(t, r2, -1)
	if len(hs) != 1 || hs[0].Name != "from-trigger.txt" || hs[0].Size != 5 {
		t.Errorf("trigger layer: %v", hs)
	}
	if c := configOf(t, r2); len(c.Config.OnBuild) != 0 {
		t.Errorf("OnBuild inherited: %v", c.Config.OnBuild)
	}
}

// TestDockerfileDockerignore: Dockerfile.dockerignore beside the Dockerfile
// wins over the context's .dockerignore.
func TestDockerfileDockerignore(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile":              "FROM scratch\nCOPY . /c/\n",
		"Dockerfile.dockerignore": "b.txt\nDockerfile*\n",
		".dockerignore":           "a.txt\n",
		"a.txt":                   "a", "b.txt": "b",
	})
	res, err := testBuild(t, nil, dir)
	must(t, err)
	var names []string
	for _, h := range layerHeaders(t, res, -1) {
		names = append(names, h.Name)
	}
	if d := cmp.Diff([]string{"c/", "c/.dockerignore", "c/a.txt"}, names); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestTarContext: a context given as a tar stream builds like the same
// directory.
func TestTarContext(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY . /c/\n", "a.txt": "a"})
	epoch := build.WithSourceDateEpoch(time.Unix(1, 0))
	r1, err := testBuild(t, nil, dir, epoch)
	must(t, err)
	tarFile := filepath.Join(t.TempDir(), "ctx.tar")
	f, err := os.Create(tarFile)
	must(t, err)
	must(t, layer.FromDir(context.Background(), f, dir))
	f.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "root"))
	must(t, err)
	defer st.Close()
	in, err := build.OpenInput(context.Background(), tarFile, "", nil, t.TempDir())
	must(t, err)
	defer in.Close()
	r2, err := build.New(st, epoch).Build(context.Background(), in.Dockerfile, in.Context)
	must(t, err)
	if r1.ID != r2.ID {
		t.Errorf("tar context gives %s, directory %s", r2.ID, r1.ID)
	}
}

// TestPlatform: --platform picks the image of a multi-platform base, the
// platform args follow it, and FROM --platform=$BUILDPLATFORM takes the
// build machine's.
func TestPlatform(t *testing.T) {
	multi := corpustest.Image(t, "alpine-3.20-multiarch.oci.tar")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": `ARG BASE
FROM --platform=$BUILDPLATFORM scratch AS tools
COPY a.txt /tool
FROM $BASE
ARG TARGETARCH
ARG TARGETPLATFORM
LABEL arch=$TARGETARCH platform=$TARGETPLATFORM
COPY --from=tools /tool /tool
`,
		"a.txt": "a",
	})
	res, err := testBuild(t, nil, dir, build.WithPlatform(&v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}),
		build.WithBuildArgs(map[string]string{"BASE": "oci-archive:" + multi}))
	must(t, err)
	c := configOf(t, res)
	if c.Architecture != "arm64" || c.Config.Labels["arch"] != "arm64" || c.Config.Labels["platform"] != "linux/arm64/v8" {
		t.Errorf("arch %q labels %v", c.Architecture, c.Config.Labels)
	}
	if res.Descriptor.Platform == nil || res.Descriptor.Platform.Architecture != "arm64" {
		t.Errorf("descriptor platform %v", res.Descriptor.Platform)
	}
}

var _ = v1.Hash{}
var _ = errors.New

// TestAddArchives: ADD unpacks a local tar archive compressed by each tool
// Docker's ADD recognizes (gzip, bzip2, xz, zstd, or none), as the real
// tools write them, and copies a compressed file that is not a tar as it is.
func TestAddArchives(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"top.txt": "top\n", "sub/inner.txt": "inner\n", "sub/link": "->inner.txt"})
	dir := t.TempDir()
	plain := filepath.Join(dir, "a.tar")
	if out, err := exec.Command("tar", "--sort=name", "-cf", plain, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	tools := []struct{ tool, pkg, ext string }{
		{"gzip", "gzip", "gz"}, {"bzip2", "bzip2", "bz2"}, {"xz", "xz-utils", "xz"}, {"zstd", "zstd", "zst"},
	}
	dockerfile := "FROM scratch\nADD a.tar /plain/\n"
	for _, c := range tools {
		testenv.Tool(t, c.tool, c.pkg)
		cmd := exec.Command(c.tool, "-c", plain)
		out, err := cmd.Output()
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, "a.tar."+c.ext), out, 0o644))
		dockerfile += "ADD a.tar." + c.ext + " /" + c.tool + "/\n"
	}
	// A compressed file that is not a tar archive is copied unchanged.
	gz, err := exec.Command("sh", "-c", "printf 'not a tar\\n' | gzip -c").Output()
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "note.gz"), gz, 0o644))
	dockerfile += "ADD note.gz /copied/\n"
	must(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644))
	res, err := testBuild(t, nil, dir)
	must(t, err)
	tree := exportTree(t, res)
	for _, d := range []string{"plain", "gzip", "bzip2", "xz", "zstd"} {
		for name, want := range map[string]string{"top.txt": "top\n", "sub/inner.txt": "inner\n", "sub/link": ""} {
			if got, ok := tree[d+"/"+name]; !ok || got != want {
				t.Errorf("ADD of the %s archive: %s/%s is %q (present %v), want %q", d, d, name, got, ok, want)
			}
		}
	}
	if got := tree["copied/note.gz"]; got != string(gz) {
		t.Errorf("a gzip file that is not a tar: copied as %q", got)
	}
}

package container_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/container"
	"github.com/lading-dev/lading/internal/errdefs"
)

func TestApplyChanges(t *testing.T) {
	base := func() v1.Config {
		return v1.Config{Env: []string{"PATH=/usr/bin:/bin", "HOME=/root"}, Cmd: []string{"/bin/sh"}, WorkingDir: "/srv"}
	}
	tests := []struct {
		name    string
		changes []string
		want    func(*v1.Config)
	}{
		{"CMD exec form", []string{`CMD ["echo", "a b"]`}, func(c *v1.Config) { c.Cmd = []string{"echo", "a b"} }},
		{"CMD shell form", []string{`cmd echo $HOME`}, func(c *v1.Config) { c.Cmd = []string{"/bin/sh", "-c", "echo $HOME"} }},
		{"ENTRYPOINT drops Cmd", []string{`ENTRYPOINT ["/app"]`}, func(c *v1.Config) { c.Entrypoint, c.Cmd = []string{"/app"}, nil }},
		{"CMD then ENTRYPOINT keeps Cmd", []string{`CMD ["x"]`, `ENTRYPOINT /app`}, func(c *v1.Config) {
			c.Cmd, c.Entrypoint = []string{"x"}, []string{"/bin/sh", "-c", "/app"}
		}},
		{"ENV pairs", []string{`ENV A=1 B="two words" C=$HOME/x D='$HOME' E=\$F`}, func(c *v1.Config) {
			c.Env = append(c.Env, "A=1", "B=two words", "C=/root/x", "D=$HOME", "E=$F")
		}},
		{"ENV legacy form", []string{`ENV GREETING hello world`}, func(c *v1.Config) { c.Env = append(c.Env, "GREETING=hello world") }},
		{"ENV replaces and expands the old value", []string{`ENV PATH=/opt/bin:$PATH HOME=${NOPE:-/home/x}`}, func(c *v1.Config) {
			c.Env = []string{"PATH=/opt/bin:/usr/bin:/bin", "HOME=/home/x"}
		}},
		{"ENV uses the environment before the instruction", []string{`ENV HOME=/new X=$HOME`}, func(c *v1.Config) {
			c.Env = []string{"PATH=/usr/bin:/bin", "HOME=/new", "X=/root"}
		}},
		{"LABEL", []string{`LABEL a=b "c d"="e f"`, `LABEL old style`}, func(c *v1.Config) {
			c.Labels = map[string]string{"a": "b", "c d": "e f", "old": "style"}
		}},
		{"EXPOSE", []string{`EXPOSE 80 53/udp 8000-8002/tcp`}, func(c *v1.Config) {
			c.ExposedPorts = map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}}
		}},
		{"VOLUME", []string{`VOLUME ["/data", "/logs"]`, `VOLUME /cache`}, func(c *v1.Config) {
			c.Volumes = map[string]struct{}{"/data": {}, "/logs": {}, "/cache": {}}
		}},
		{"WORKDIR relative", []string{`WORKDIR app`, `WORKDIR ../lib`}, func(c *v1.Config) { c.WorkingDir = "/srv/lib" }},
		{"USER", []string{`USER ${NAME:-nobody}:nogroup`}, func(c *v1.Config) { c.User = "nobody:nogroup" }},
		{"STOPSIGNAL", []string{`STOPSIGNAL SIGQUIT`}, func(c *v1.Config) { c.StopSignal = "SIGQUIT" }},
		{"ONBUILD", []string{`ONBUILD run echo hi`}, func(c *v1.Config) { c.OnBuild = []string{"RUN echo hi"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, want := base(), base()
			if err := container.ApplyChanges(&got, tc.changes); err != nil {
				t.Fatal(err)
			}
			tc.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range []string{"RUN echo", "FROM x", "", "ENV", "ENV A", "EXPOSE 70000", "EXPOSE 80/icmp", "STOPSIGNAL NOPE",
		"ONBUILD FROM x", "VOLUME", `ENV A="unterminated`, "USER", "WORKDIR", "ENV A=${B"} {
		cfg := base()
		if err := container.ApplyChanges(&cfg, []string{bad}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v, want an invalid argument", bad, err)
		}
	}
}

func FuzzApplyChanges(f *testing.F) {
	for _, s := range []string{`CMD ["a"]`, `ENV A=1 B="x y" C=${D:-e}`, `LABEL "k"='v'`, `EXPOSE 1-3/udp`, `WORKDIR ../x`, `ENV A=$`, `VOLUME ["/a"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, change string) {
		cfg := v1.Config{Env: []string{"A=1"}}
		container.ApplyChanges(&cfg, []string{change}) // must not panic or hang
	})
}

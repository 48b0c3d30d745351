package sandbox_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sandbox"
)

// dockerCaps is CapEff of root in a Docker container with the default
// capability set (chown dac_override fowner fsetid kill setgid setuid
// setpcap net_bind_service net_raw sys_chroot mknod audit_write setfcap).
const dockerCaps = "00000000a80425fb"

func TestRun(t *testing.T) {
	eachRunner(t, func(t *testing.T, r sandbox.Runner) {
		dockerCaps := dockerCaps
		if strings.HasSuffix(t.Name(), "chroot") {
			dockerCaps = "00000000a80025fb" // without CAP_SYS_CHROOT
		}
		tests := []struct {
			name   string
			spec   sandbox.Spec
			code   int
			stdout string
		}{
			{"exit code", sandbox.Spec{Args: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}}, 3, "out\n"},
			{"PATH lookup and default env", sandbox.Spec{Args: []string{"sh", "-c", "echo $PATH $HOME $HOSTNAME"}}, 0, sandbox.DefaultPath + " /root lading\n"},
			{"env", sandbox.Spec{Args: []string{"/bin/sh", "-c", "echo $A-$B"}, Env: []string{"A=1", "B=two words"}}, 0, "1-two words\n"},
			{"workdir made", sandbox.Spec{Args: []string{"/bin/pwd"}, Dir: "/new/dir"}, 0, "/new/dir\n"},
			{"user by name", sandbox.Spec{Args: []string{"/bin/sh", "-c", "id"}, User: "nobody"}, 0, "uid=65534(nobody) gid=65534(nobody)\n"},
			{"user with groups", sandbox.Spec{Args: []string{"/bin/sh", "-c", "id -G; echo $HOME"}, User: "daemon"}, 0, "2 1 4\n/sbin\n"},
			{"numeric user and group", sandbox.Spec{Args: []string{"/bin/sh", "-c", "id -u; id -g"}, User: "1234:5678"}, 0, "1234\n5678\n"},
			{"hostname", sandbox.Spec{Args: []string{"/bin/hostname"}, Hostname: "box"}, 0, "box\n"},
			{"root capabilities", sandbox.Spec{Args: []string{"/bin/sh", "-c", "grep -E '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '"}}, 0,
				"CapInh: 0000000000000000\nCapPrm: " + dockerCaps + "\nCapEff: " + dockerCaps + "\nCapBnd: " + dockerCaps + "\nCapAmb: 0000000000000000\nNoNewPrivs: 1\n"},
			{"user has no capabilities", sandbox.Spec{Args: []string{"/bin/sh", "-c", "grep -E '^(CapEff|CapPrm)' /proc/self/status | tr -s '\\t' ' '"}, User: "nobody"}, 0,
				"CapPrm: 0000000000000000\nCapEff: 0000000000000000\n"},
			{"PID 1 in its own PID namespace", sandbox.Spec{Args: []string{"/bin/sh", "-c", "echo $$; set -- /proc/[0-9]*; echo $#"}}, 0, "1\n1\n"},
			{"no network but loopback", sandbox.Spec{Args: []string{"/bin/sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; cat /sys/class/net/lo/operstate"}}, 0, "lo\nunknown\n"},
			{"minimal /dev", sandbox.Spec{Args: []string{"/bin/sh", "-c", "ls /dev | tr '\\n' ' '"}}, 0, "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero "},
			{"read-only /proc/sys", sandbox.Spec{Args: []string{"/bin/sh", "-c", "echo x > /proc/sys/kernel/hostname || echo refused"}}, 0, "refused\n"},
			{"masked /proc/keys and /sys/firmware", sandbox.Spec{Args: []string{"/bin/sh", "-c", "wc -c < /proc/keys; ls /sys/firmware | wc -l"}}, 0, "0\n0\n"},
			{"PID 1 ignores signals it does not handle", sandbox.Spec{Args: []string{"/bin/sh", "-c", "kill -9 $$; echo alive"}}, 0, "alive\n"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tc.spec.Root = alpine(t)
				res := run(t, r, tc.spec)
				if res.err != nil {
					t.Fatalf("Run: %v (stderr %q)", res.err, res.stderr)
				}
				if res.code != tc.code {
					t.Errorf("exit code %d, want %d (stderr %q)", res.code, tc.code, res.stderr)
				}
				if diff := cmp.Diff(tc.stdout, res.stdout); diff != "" {
					t.Errorf("stdout (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestStdin(t *testing.T) {
	eachRunner(t, func(t *testing.T, r sandbox.Runner) {
		res := run(t, r, sandbox.Spec{Root: alpine(t), Args: []string{"/usr/bin/wc", "-c"}, Stdin: strings.NewReader(strings.Repeat("x", 100000))})
		if res.err != nil || res.code != 0 || strings.TrimSpace(res.stdout) != "100000" {
			t.Errorf("wc -c of 100000 bytes: %q, code %d, err %v", res.stdout, res.code, res.err)
		}
	})
}

func TestTTY(t *testing.T) {
	eachRunner(t, func(t *testing.T, r sandbox.Runner) {
		res := run(t, r, sandbox.Spec{
			Root: alpine(t), TTY: true, ConsoleSize: sandbox.WinSize{Rows: 33, Cols: 101},
			Args: []string{"/bin/sh", "-c", "tty; test -t 0 && echo stdin-tty; stty size; echo $TERM"},
		})
		if res.err != nil {
			t.Fatal(res.err)
		}
		want := "/dev/pts/0\r\nstdin-tty\r\n33 101\r\nxterm\r\n"
		if diff := cmp.Diff(want, res.stdout); diff != "" {
			t.Errorf("tty output (-want +got):\n%s", diff)
		}
	})
}

func TestExecErrors(t *testing.T) {
	eachRunner(t, func(t *testing.T, r sandbox.Runner) {
		root := alpine(t)
		if err := os.WriteFile(filepath.Join(root, "noexec"), []byte("#!/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			args []string
			code int
		}{
			{[]string{"nonexistent-command"}, 127},
			{[]string{"/no/such/file"}, 127},
			{[]string{"/noexec"}, 126},
		} {
			res := run(t, r, sandbox.Spec{Root: root, Args: tc.args})
			var ee *sandbox.ExecError
			if !errors.As(res.err, &ee) || res.code != tc.code {
				t.Errorf("%v: code %d, err %v; want %d and an ExecError", tc.args, res.code, res.err, tc.code)
			}
			if tc.code == 127 && !errdefs.IsNotFound(res.err) {
				t.Errorf("%v: %v is not NotFound", tc.args, res.err)
			}
		}
	})
}

func TestBadSpec(t *testing.T) {
	r := sandbox.Native()
	for _, s := range []sandbox.Spec{
		{Root: "relative", Args: []string{"x"}},
		{Root: "/", Args: nil},
		{Root: "/", Args: []string{"x"}, Network: "bridge"},
		{Root: "/", Args: []string{"x"}, Mounts: []sandbox.Mount{{Source: "/tmp", Target: "/"}}},
		{Root: "/", Args: []string{"x"}, Mounts: []sandbox.Mount{{Source: "rel", Target: "/x"}}},
		{Root: "/", Args: []string{"x"}, Env: []string{"NOEQUALS"}},
	} {
		if _, err := r.Run(context.Background(), s); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: %v, want InvalidArgument", s, err)
		}
	}
}

func TestMounts(t *testing.T) {
	eachRunner(t, func(t *testing.T, r sandbox.Runner) {
		host := t.TempDir()
		if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ro := t.TempDir()
		res := run(t, r, sandbox.Spec{
			Root: alpine(t),
			Args: []string{"/bin/sh", "-c", "cat /data/in; echo back > /data/out; touch /ro/x 2>/dev/null || echo ro refused; df -k /small | tail -1 | awk '{print $2}'"},
			Mounts: []sandbox.Mount{
				{Source: host, Target: "/data"},
				{Source: ro, Target: "/ro", ReadOnly: true},
				{Type: "tmpfs", Target: "/small", Size: 1 << 20},
			},
		})
		if res.err != nil || res.code != 0 {
			t.Fatalf("code %d, err %v, stderr %q", res.code, res.err, res.stderr)
		}
		if want := "from host\nro refused\n1024\n"; res.stdout != want {
			t.Errorf("stdout %q, want %q", res.stdout, want)
		}
		if b, _ := os.ReadFile(filepath.Join(host, "out")); string(b) != "back\n" {
			t.Errorf("host sees %q", b)
		}
	})
}

func TestHostNetwork(t *testing.T) {
	eachRunner(t, func(t *testing.T, r sandbox.Runner) {
		host, err := os.ReadFile("/proc/net/dev")
		if err != nil {
			t.Fatal(err)
		}
		res := run(t, r, sandbox.Spec{Root: alpine(t), Network: "host", Args: []string{"/bin/cat", "/proc/net/dev"}})
		if res.err != nil || res.code != 0 {
			t.Fatalf("code %d, err %v", res.code, res.err)
		}
		if n, want := len(lines(res.stdout)), len(lines(string(host))); n != want {
			t.Errorf("host network: %d lines of /proc/net/dev, the host has %d", n, want)
		}
	})
}

func TestContextCancel(t *testing.T) {
	eachRunner(t, func(t *testing.T, r sandbox.Runner) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(300 * time.Millisecond); cancel() }()
		_, err := r.Run(ctx, sandbox.Spec{Root: alpine(t), Args: []string{"/bin/sleep", "1000"}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
}

func TestLookupUser(t *testing.T) {
	files := map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n# comment\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:100:::\nbad:x:notanumber:1::\n",
		"/etc/group":  "root:x:0:\nusers:x:100:alice,bob\nwheel:x:10:alice\nalice:x:1000:\n",
	}
	open := func(name string) (io.ReadCloser, error) {
		s, ok := files[name]
		if !ok {
			return nil, os.ErrNotExist
		}
		return nopCloser{strings.NewReader(s)}, nil
	}
	tests := []struct {
		user string
		want sandbox.Cred
		err  bool
	}{
		{"", sandbox.Cred{UID: 0, GID: 0, Home: "/root"}, false},
		{"alice", sandbox.Cred{UID: 1000, GID: 1000, Groups: []uint32{100, 10}, Home: "/home/alice"}, false},
		{"1000", sandbox.Cred{UID: 1000, GID: 1000, Groups: []uint32{100, 10}, Home: "/home/alice"}, false},
		{"bob", sandbox.Cred{UID: 1001, GID: 100, Groups: []uint32{100}, Home: "/"}, false},
		{"alice:wheel", sandbox.Cred{UID: 1000, GID: 10, Home: "/home/alice"}, false},
		{"alice:42", sandbox.Cred{UID: 1000, GID: 42, Home: "/home/alice"}, false},
		{"4242", sandbox.Cred{UID: 4242, Home: "/"}, false},
		{"4242:7", sandbox.Cred{UID: 4242, GID: 7, Home: "/"}, false},
		{"nobody", sandbox.Cred{}, true},
		{"alice:nogroup", sandbox.Cred{}, true},
		{"alice:", sandbox.Cred{}, true},
		{"4294967295", sandbox.Cred{}, true},
		{"a/b", sandbox.Cred{}, true},
	}
	for _, tc := range tests {
		got, err := sandbox.LookupUser(tc.user, open)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v, want error %v", tc.user, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); !tc.err && diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.user, diff)
		}
	}
}

func FuzzLookupUser(f *testing.F) {
	f.Add("alice", "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n", "users:x:100:alice\n")
	f.Add("1:2", "::::::\n", ":::\n")
	f.Fuzz(func(t *testing.T, user, passwd, group string) {
		c, err := sandbox.LookupUser(user, func(n string) (io.ReadCloser, error) {
			if n == "/etc/passwd" {
				return nopCloser{strings.NewReader(passwd)}, nil
			}
			return nopCloser{strings.NewReader(group)}, nil
		})
		if err == nil && (c.UID >= 1<<31 || c.GID >= 1<<31) {
			t.Errorf("%q: id out of range: %+v", user, c)
		}
	})
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// Package pgtest starts a real PostgreSQL server for tests, from the
// binaries of Debian's postgresql package (or any initdb and postgres in
// $PATH), in a temporary directory, listening on a loopback port. PostgreSQL
// refuses to run as root, so as root the server runs as the "postgres" user
// through runuser. A test that needs it and does not find the binaries is
// skipped with a message.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/lading-dev/lading/internal/testenv"
)

// Server is a running PostgreSQL server.
type Server struct {
	// URL is the connection URL of the server's "postgres" database.
	URL  string
	port int
}

// Binaries returns the directory holding initdb and postgres, or "".
func Binaries() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start starts a server that lives until the test ends, or skips t.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binaries()
	if bin == "" {
		testenv.Skip(t, "PostgreSQL not found (initdb and postgres in $PATH or /usr/lib/postgresql/*/bin); install Debian's postgresql package (see .ci/setup.d/60-registry.sh)")
	}
	asRoot := os.Geteuid() == 0
	var uid, gid int
	if asRoot {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Skip(t, "running as root and there is no postgres user to run PostgreSQL as: %v", err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			testenv.Skip(t, "running as root and runuser is missing; cannot start PostgreSQL as the postgres user")
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	// Not t.TempDir: its parents are private to root, and the server may
	// run as another user.
	dir, err := os.MkdirTemp("", "lading-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if asRoot {
		for _, d := range []string{dir, data, sock} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	command := func(ctx context.Context, name string, args ...string) *exec.Cmd {
		path := filepath.Join(bin, name)
		if asRoot {
			return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
		}
		return exec.CommandContext(ctx, path, args...)
	}
	ctx := context.Background()
	out, err := command(ctx, "initdb", "-D", data, "-U", "lading", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync").CombinedOutput()
	if err != nil {
		// Older initdb without C.UTF-8 support: let it pick.
		out2, err2 := command(ctx, "initdb", "-D", data, "-U", "lading", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput()
		if err2 != nil {
			t.Fatalf("initdb: %v\n%s\n%s", err2, out, out2)
		}
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := command(ctx, "postgres", "-D", data, "-p", strconv.Itoa(port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	s := &Server{URL: fmt.Sprintf("postgres://lading@127.0.0.1:%d/postgres?sslmode=disable", port), port: port}
	t.Cleanup(func() {
		// Signal the postmaster itself (runuser may not forward):
		// SIGINT is a fast shutdown.
		if pid := postmasterPID(data); pid > 0 {
			syscall.Kill(pid, syscall.SIGINT)
		} else if cmd.Process != nil {
			cmd.Process.Signal(syscall.SIGINT)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			if pid := postmasterPID(data); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", s.URL)
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("postgres did not start on port %d: %v\n%s", port, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

// NewDatabase creates a fresh database and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return strings.Replace(s.URL, "/postgres?", "/"+name+"?", 1)
}

func postmasterPID(data string) int {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

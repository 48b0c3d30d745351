package cli

import (
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to watch the collector
	_ "modernc.org/sqlite"             // the "sqlite" driver, to watch the collector

	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
)

// TestServeGCKilled kills "lading serve gc" with SIGKILL while it has a
// blob marked deleting (it is stopped with SIGSTOP until the database shows
// one) and pushes that blob again through a running "lading serve": the
// dead collector's lock died with it, so the push succeeds at once instead
// of answering 503 until a timeout expires.
func TestServeGCKilled(t *testing.T) {
	t.Run("filesystem+sqlite", func(t *testing.T) {
		root := t.TempDir()
		db := filepath.Join(root, "registry", "meta.db")
		gcKilled(t, root, "sqlite", "file:"+db+"?_pragma=busy_timeout(10000)", fmt.Sprintf("database: {sqlite: %q}\n", db))
	})
	t.Run("filesystem+postgres", func(t *testing.T) {
		url := pgtest.Start(t).NewDatabase(t)
		gcKilled(t, t.TempDir(), "pgx", url, fmt.Sprintf("database: {url: %q}\n", url))
	})
}

func gcKilled(t *testing.T, root, driver, dsn, dbConfig string) {
	bin := ladingBinary(t)
	cfg := filepath.Join(root, "registry.yaml")
	// No grace: everything unreferenced is garbage at once.
	if err := os.WriteFile(cfg, []byte(dbConfig+"gc: {grace: 1ns}\nauth: {mode: none}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, root, "--config", cfg)
	client := &http.Client{}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	blobs := map[string][]byte{}
	victim := ""
	for round := 0; round < 20 && victim == ""; round++ {
		for range 200 {
			b := make([]byte, 64)
			rand.Read(b)
			if code := pushBlob(t, client, srv.base, "gc/r", b, "", ""); code != http.StatusCreated {
				t.Fatalf("push: %d", code)
			}
			blobs[sha256Digest(b)] = b
		}
		victim = killMidCollection(t, bin, root, cfg, db)
	}
	if victim == "" {
		t.Fatal("never caught the collector with a blob marked deleting")
	}
	if code := pushBlob(t, client, srv.base, "gc/r", blobs[victim], "", ""); code != http.StatusCreated {
		t.Fatalf("push of %s, left deleting by the killed collector: %d, want 201 at once", victim, code)
	}
	resp, err := client.Get(srv.base + "/v2/gc/r/blobs/" + victim)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET the re-pushed blob: %s", resp.Status)
	}
	// A new collection after the dead one runs to its end.
	if out, err := exec.Command(bin, "--root", root, "serve", "gc", "--config", cfg).CombinedOutput(); err != nil {
		t.Errorf("lading serve gc after the killed one: %v\n%s", err, out)
	}
}

// killMidCollection runs "lading serve gc" and stops it again and again
// until the database shows a blob marked deleting, then kills it with
// SIGKILL and returns that blob; "" if the collection ended first.
func killMidCollection(t *testing.T, bin, root, cfg string, db *sql.DB) string {
	cmd := exec.Command(bin, "--root", root, "serve", "gc", "--config", cfg)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("lading serve gc: %v\n%s", err, out.String())
			}
			return ""
		default:
		}
		cmd.Process.Signal(syscall.SIGSTOP)
		if !waitStopped(cmd.Process.Pid) {
			continue // it exited meanwhile
		}
		// The stopped collector may hold a lock the query waits for
		// (SQLite's recovery, PostgreSQL's schema step at its start):
		// then it runs on and the query is asked again.
		type found struct {
			d   string
			err error
		}
		res := make(chan found, 1)
		go func() {
			var f found
			f.err = db.QueryRow(`SELECT digest FROM blobs WHERE state = 'deleting' LIMIT 1`).Scan(&f.d)
			res <- f
		}()
		var f found
		select {
		case f = <-res:
		case <-time.After(time.Second):
			cmd.Process.Signal(syscall.SIGCONT)
			<-res
			continue
		}
		if f.err == nil {
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			t.Logf("killed the collector with %s marked deleting", f.d)
			return f.d
		}
		if !errors.Is(f.err, sql.ErrNoRows) {
			cmd.Process.Signal(syscall.SIGKILL)
			t.Fatal(f.err)
		}
		cmd.Process.Signal(syscall.SIGCONT)
		time.Sleep(2 * time.Millisecond)
	}
}

// waitStopped waits until process pid is stopped; false if it is gone.
func waitStopped(pid int) bool {
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// pid (comm) state ...: the state follows the last ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) == 0 || fields[0] == "Z" || fields[0] == "X" {
			return false
		}
		if fields[0] == "T" || fields[0] == "t" {
			return true
		}
		time.Sleep(time.Millisecond)
	}
}

// Package container keeps lading's containers: a writable root file system
// over an image's layers (internal/rootfs) with the record of how to run it,
// run in a sandbox (internal/sandbox), and turned back into images (Commit).
//
// On-disk layout, under the lading root:
//
//	<root>/containers/
//	  lock              flock, exclusive while a container is created (its name
//	                    checked and taken) or removed
//	  .runc/            runc's state root for containers run with runc
//	  <id>/             one container; id is 64 hex digits
//	    config.json     the Record: name, image, how to run (written once, atomically)
//	    state.json      the State: created, running, exited, exit code, times
//	                    (replaced atomically)
//	    run.lock        flock, held exclusively by the process running the container:
//	                    "running" means this lock is held
//	    use.lock        flock, shared by every process that uses the container
//	                    (run, diff, export, commit), exclusive to remove it
//	    rootfs/         the rootfs.FS directory (upper/ work/ merged/, or tree/)
//	<root>/layers/      the rootfs cache: unpacked layers by diffID
//
// A process that is killed (kill -9 of `lading run`) releases its locks with
// it; the sandbox dies with it (its init has a parent-death signal); the
// overlay mount it made may stay on <id>/rootfs/merged, and the next run,
// rm or commit detaches it. State may then still say "running": Status
// reads the lock, not the file.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/rootfs"
	"github.com/lading-dev/lading/internal/sandbox"
)

// Store is the containers of one lading root.
type Store struct {
	root string // the lading root
	dir  string // <root>/containers
	log  *slog.Logger
}

// Option configures Open.
type Option func(*Store)

// WithLogger sets where warnings go (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Open opens the containers of the lading root root, creating the directory
// if needed.
func Open(root string, opts ...Option) (*Store, error) {
	s := &Store{root: root, dir: filepath.Join(root, "containers")}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	// What a removal cut short left (already out of List's sight).
	if trash, _ := filepath.Glob(filepath.Join(s.dir, ".trash-*")); len(trash) > 0 {
		for _, t := range trash {
			rootfs.Unmount(filepath.Join(t, "rootfs", "merged"))
			os.RemoveAll(t)
		}
	}
	return s, nil
}

// LayerCache is the directory of unpacked layers (rootfs.WithCache).
func (s *Store) LayerCache() string { return filepath.Join(s.root, "layers") }

// Record is what a container was created with: the image and how to run
// it. Config is the container's config as Docker keeps it: the image's
// config with the run's options applied; Commit starts from it.
type Record struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Image    string        `json:"image"`    // the image as the user named it
	ImageID  v1.Hash       `json:"imageID"`  // its config digest
	Manifest v1.Descriptor `json:"manifest"` // its manifest in the local store
	Layers   []v1.Hash     `json:"layers"`   // its diffIDs, bottom first
	Config   v1.Config     `json:"config"`
	Args     []string      `json:"args"` // Entrypoint + Cmd: what runs
	Network  string        `json:"network"`
	Mounts   []sandbox.Mount
	Limits   sandbox.Limits `json:"limits"`
	Runtime  string         `json:"runtime"` // native or runc
	Created  time.Time      `json:"created"`
}

// Status values of a State.
const (
	Created = "created"
	Running = "running"
	Exited  = "exited"
)

// State is what happened to a container.
type State struct {
	Status   string    `json:"status"`
	Pid      int       `json:"pid,omitempty"` // the lading process running it
	ExitCode int       `json:"exitCode"`
	Error    string    `json:"error,omitempty"` // why the sandbox failed
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// Container is one container of a Store.
type Container struct {
	Record
	s   *Store
	dir string
}

// ShortID is the first 12 digits of the ID, as docker prints it.
func (c *Container) ShortID() string { return c.ID[:12] }

func (c *Container) path(name string) string { return filepath.Join(c.dir, name) }

// State returns the container's state; a container whose state says
// running but whose run lock is free was running in a process that died:
// it is Exited with ExitCode -1.
func (c *Container) State() State {
	var st State
	b, err := os.ReadFile(c.path("state.json"))
	if err != nil || json.Unmarshal(b, &st) != nil {
		return State{Status: Created}
	}
	if st.Status == Running && !c.locked("run.lock") {
		st.Status, st.ExitCode, st.Error = Exited, -1, "the lading process running it died"
	}
	return st
}

func (c *Container) setState(st State) error {
	return writeJSON(c.path("state.json"), st)
}

// locked reports whether some process holds the lock file name exclusively.
func (c *Container) locked(name string) bool {
	f, err := os.Open(c.path(name))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	return false
}

// lock takes the flock name of the container (how: LOCK_SH or LOCK_EX),
// without waiting; busy says what to tell when another process holds it.
func (c *Container) lock(name string, how int, busy string) (*os.File, error) {
	f, err := os.OpenFile(c.path(name), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errdefs.Conflict(fmt.Errorf("container %s %s", c.Name, busy))
		}
		return nil, err
	}
	return f, nil
}

// use takes the shared use lock: the container cannot be removed until the
// returned function is called.
func (c *Container) use() (func(), error) {
	f, err := c.lock("use.lock", syscall.LOCK_SH, "is being removed")
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// lockStore takes the store's lock, waiting for it as long as ctx allows.
func (s *Store) lockStore(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// List returns every container, newest first.
func (s *Store) List() ([]*Container, error) {
	es, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, e := range es {
		if !e.IsDir() || !isID(e.Name()) {
			continue
		}
		c, err := s.load(e.Name())
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // being created or removed
			}
			s.log.Warn("skipping a damaged container", "id", e.Name(), "err", err)
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Container) int { return b.Created.Compare(a.Created) })
	return out, nil
}

func (s *Store) load(id string) (*Container, error) {
	dir := filepath.Join(s.dir, id)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	c := &Container{s: s, dir: dir}
	if err := json.Unmarshal(b, &c.Record); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("container %s: config.json: %w", id, err))
	}
	if c.ID != id {
		return nil, errdefs.InvalidArgument(fmt.Errorf("container %s: config.json names %s", id, c.ID))
	}
	return c, nil
}

// Get finds a container by name, full ID or unique ID prefix.
func (s *Store) Get(ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return nil, errdefs.InvalidArgument(errors.New("empty container name"))
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	var byPrefix []*Container
	for _, c := range all {
		if c.Name == ref || c.ID == ref {
			return c, nil
		}
		if isHex(ref) && strings.HasPrefix(c.ID, ref) {
			byPrefix = append(byPrefix, c)
		}
	}
	switch len(byPrefix) {
	case 0:
		return nil, errdefs.NotFound(fmt.Errorf("no such container: %s", ref))
	case 1:
		return byPrefix[0], nil
	}
	return nil, errdefs.InvalidArgument(fmt.Errorf("container ID prefix %s is ambiguous: %d containers match", ref, len(byPrefix)))
}

// Remove deletes a container and its changes. A running container is
// refused unless force: then the process running it is sent SIGTERM (its
// sandbox is killed) and Remove waits for it to let go, SIGKILL after
// ten seconds. A mount left behind by a killed process is detached.
func (s *Store) Remove(ctx context.Context, c *Container, force bool) error {
	unlock, err := s.lockStore(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	run, err := c.lock("run.lock", syscall.LOCK_EX, "is running: stop it first, or remove it with -f")
	if err != nil && force && errors.Is(err, errdefs.ErrConflict) {
		run, err = c.stop(ctx)
	}
	if err != nil {
		return err
	}
	defer run.Close()
	use, err := c.lock("use.lock", syscall.LOCK_EX, "is in use by another lading process (diff, export or commit)")
	if err != nil {
		return err
	}
	defer use.Close()
	if err := rootfs.Unmount(c.path("rootfs/merged")); err != nil {
		return err
	}
	if c.Runtime == "runc" {
		s.runcDelete(ctx, c)
	}
	// Rename first, so that a removal cut short leaves no half container
	// that List would show.
	trash := filepath.Join(s.dir, ".trash-"+c.ID)
	if err := os.Rename(c.dir, trash); err != nil {
		return fmt.Errorf("remove container %s: %w", c.Name, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove container %s: %w", c.Name, err)
	}
	return nil
}

// stop ends the process running c and returns its run lock.
func (c *Container) stop(ctx context.Context) (*os.File, error) {
	st := c.State()
	sig := syscall.SIGTERM
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st.Pid > 0 {
			syscall.Kill(st.Pid, sig)
		}
		f, err := c.lock("run.lock", syscall.LOCK_EX, "is still running")
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, errdefs.ErrConflict) {
			return nil, err
		}
		if time.Now().After(deadline) {
			sig = syscall.SIGKILL
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isID(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return s != ""
}

// writeJSON replaces path with v as JSON (temp file and rename).
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

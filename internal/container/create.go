package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/rootfs"
	"github.com/lading-dev/lading/internal/sandbox"
)

// CreateOptions say what a new container runs, as `docker run`'s flags do.
// Nil slices and empty strings keep what the image's config says.
type CreateOptions struct {
	Name       string   // default: a generated adjective_name
	ImageRef   string   // the image as the user named it
	Image      v1.Image // from the local store (its layers must be there)
	Cmd        []string // replaces the image's Cmd when not nil
	Entrypoint []string // replaces the image's Entrypoint (and drops its Cmd) when not nil
	Env        []string // KEY=VALUE, replacing the image's value of KEY
	User       string
	WorkingDir string
	Hostname   string // default: the short ID
	Network    string // none (default) or host
	Mounts     []sandbox.Mount
	TTY        bool
	Stdin      bool // keep stdin open (-i)
	Limits     sandbox.Limits
	Runtime    string // native (default) or runc
	// Mode chooses how the root file system is made (default: overlayfs
	// when root, else a copy).
	Mode rootfs.Mode
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create makes a container: its record, and its root file system over the
// image's layers (unpacked into the layer cache if needed), not mounted.
func (s *Store) Create(ctx context.Context, o CreateOptions) (*Container, error) {
	if o.Name != "" && (!validName.MatchString(o.Name) || len(o.Name) > 128 || isID(o.Name)) {
		return nil, errdefs.InvalidArgument(fmt.Errorf("invalid container name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*", o.Name))
	}
	switch o.Runtime {
	case "":
		o.Runtime = "native"
	case "native", "runc":
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("runtime %q: want native or runc", o.Runtime))
	}
	rec, err := newRecord(o)
	if err != nil {
		return nil, err
	}
	layers, err := o.Image.Layers()
	if err != nil {
		return nil, err
	}
	c, err := s.reserve(ctx, rec)
	if err != nil {
		return nil, err
	}
	fsys, err := rootfs.New(ctx, layers, rootfs.WithCache(s.LayerCache()), rootfs.WithDir(c.path("rootfs")),
		rootfs.WithMode(o.Mode), rootfs.WithoutMount(), rootfs.WithLogger(s.log))
	if err == nil {
		err = fsys.Close()
	}
	if err == nil {
		err = c.setState(State{Status: Created})
	}
	if err != nil {
		s.Remove(context.WithoutCancel(ctx), c, true)
		return nil, err
	}
	return c, nil
}

// reserve takes the container's name and writes its record.
func (s *Store) reserve(ctx context.Context, rec Record) (*Container, error) {
	unlock, err := s.lockStore(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, c := range all {
		taken[c.Name] = true
	}
	if rec.Name == "" {
		for i := 0; rec.Name == "" || taken[rec.Name]; i++ {
			rec.Name = randomName(i)
		}
	} else if taken[rec.Name] {
		return nil, errdefs.Conflict(fmt.Errorf("the container name %q is already in use", rec.Name))
	}
	c := &Container{Record: rec, s: s, dir: filepath.Join(s.dir, rec.ID)}
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	if err := writeJSON(c.path("config.json"), rec); err != nil {
		os.RemoveAll(c.dir)
		return nil, fmt.Errorf("create container: %w", err)
	}
	return c, nil
}

// newRecord applies the options to the image's config, as docker run does.
func newRecord(o CreateOptions) (Record, error) {
	if o.Image == nil {
		return Record{}, errdefs.InvalidArgument(errors.New("no image"))
	}
	cf, err := o.Image.ConfigFile()
	if err != nil {
		return Record{}, err
	}
	id, err := o.Image.ConfigName()
	if err != nil {
		return Record{}, err
	}
	mdesc, err := descriptorOf(o.Image)
	if err != nil {
		return Record{}, err
	}
	rec := Record{
		ID:       newID(),
		Name:     o.Name,
		Image:    o.ImageRef,
		ImageID:  id,
		Manifest: mdesc,
		Layers:   cf.RootFS.DiffIDs,
		Network:  o.Network,
		Mounts:   o.Mounts,
		Limits:   o.Limits,
		Runtime:  o.Runtime,
		Created:  time.Now().UTC(),
	}
	if rec.Network == "" {
		rec.Network = "none"
	}
	cfg := *cf.Config.DeepCopy()
	if o.Entrypoint != nil {
		cfg.Entrypoint = o.Entrypoint
		if len(o.Entrypoint) == 1 && o.Entrypoint[0] == "" {
			cfg.Entrypoint = nil
		}
		cfg.Cmd = nil // as docker: a new entrypoint drops the image's Cmd
	}
	if o.Cmd != nil {
		cfg.Cmd = o.Cmd
	}
	cfg.Env = mergeEnv(cfg.Env, o.Env)
	if o.User != "" {
		cfg.User = o.User
	}
	if o.WorkingDir != "" {
		cfg.WorkingDir = o.WorkingDir
	}
	cfg.Hostname = o.Hostname
	if cfg.Hostname == "" {
		cfg.Hostname = rec.ID[:12]
	}
	cfg.Image = o.ImageRef
	cfg.Tty = o.TTY
	cfg.OpenStdin, cfg.StdinOnce, cfg.AttachStdin = o.Stdin, o.Stdin, o.Stdin
	cfg.AttachStdout, cfg.AttachStderr = true, true
	rec.Config = cfg
	rec.Args = append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if len(rec.Args) == 0 {
		return Record{}, errdefs.InvalidArgument(errors.New("no command specified: the image has no Entrypoint or Cmd, and none was given"))
	}
	return rec, nil
}

func descriptorOf(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: n}, nil
}

// mergeEnv replaces or adds the KEY=VALUE entries of add in env, keeping
// env's order.
func mergeEnv(env, add []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

var (
	adjectives = []string{"amber", "brave", "calm", "deft", "eager", "fond", "gentle", "hardy", "keen", "lucid", "merry", "nimble", "plucky", "quiet", "sturdy", "tidy"}
	nouns      = []string{"barge", "cutter", "dory", "ferry", "galley", "hulk", "junk", "ketch", "launch", "punt", "raft", "schooner", "sloop", "tender", "wherry", "yawl"}
)

// randomName is a generated name; after a few taken ones, a number is
// added.
func randomName(try int) string {
	b := newID()
	n := fmt.Sprintf("%s_%s", adjectives[int(b[0])%len(adjectives)], nouns[int(b[1])%len(nouns)])
	if try > 8 {
		n += "_" + b[2:6]
	}
	return n
}

// Package tarfs serves the members of a tar archive as a read-only fs.FS
// without unpacking it: it reads the headers once, remembers where each
// member's bytes lie, and reads them in place through io.SectionReader.
//
// Archives are docker-archive and oci-archive files, which may be gzipped as
// a whole and may arrive on standard input. A gzipped or non-seekable
// archive is first copied, decompressed, to one temp file (the only copy
// made); a plain archive file is read where it lies.
//
// Hostile archives: names are cleaned and "..", absolute and empty names are
// refused with an error naming the entry (nothing is ever written from them,
// but such an archive is not one lading would produce or trust); symbolic
// and hard links are resolved inside the archive only, with a bounded number
// of hops; the number of members and the length of names are bounded; a
// truncated archive or a member whose data runs past the end of the file is
// an error of class errdefs.ErrCorrupt. A later member of the same name
// replaces an earlier one, as tar extraction would.
package tarfs

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Limits on what an archive may hold.
const (
	MaxMembers = 1 << 20
	MaxName    = 4096
	maxHops    = 40
)

type member struct {
	name   string
	typ    byte
	link   string // cleaned target for links
	offset int64
	size   int64
	mode   fs.FileMode
	mtime  time.Time
}

// FS is an open archive. It implements fs.FS, fs.ReadDirFS and fs.StatFS.
// Close it to release the file (and the temp copy, if one was made).
type FS struct {
	f       *os.File
	tmp     string // temp copy to remove on Close
	name    string // for errors
	members map[string]*member
	dirs    map[string][]string // directory -> child base names
}

// Option configures Open.
type Option func(*options)

type options struct {
	tmpDir string
}

// WithTempDir sets where a decompressed copy goes (default os.TempDir()).
func WithTempDir(dir string) Option { return func(o *options) { o.tmpDir = dir } }

// Open opens the archive at path ("-" for standard input).
func Open(file string, opts ...Option) (*FS, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var f *os.File
	display := file
	if file == "-" {
		f = os.Stdin
		display = "standard input"
	} else {
		var err error
		f, err = os.Open(file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, errdefs.NotFound(err)
			}
			return nil, err
		}
	}
	t, err := fromFile(f, display, &o)
	if err != nil {
		if f != os.Stdin {
			f.Close()
		}
		return nil, err
	}
	return t, nil
}

// FromReader copies r (plain, gzip or zstd) to a temp file and opens it;
// display names the stream in messages. The temp file goes on Close. r is
// read only during the call, and not to its end when FromReader fails.
func FromReader(r io.Reader, display string, opts ...Option) (*FS, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return fromStream(r, display, &o)
}

// fromFile indexes f, copying it to a temp file first when it is compressed
// or cannot seek.
func fromFile(f *os.File, display string, o *options) (*FS, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(4)
	compressed := len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b ||
		len(magic) >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd
	_, seekErr := f.Seek(0, io.SeekCurrent)
	if !compressed && seekErr == nil {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return index(f, display, "")
	}
	t, err := fromStream(br, display, o)
	if err == nil && f != os.Stdin {
		f.Close()
	}
	return t, err
}

// fromStream decompresses (or copies) a stream into a temp file and
// indexes that.
func fromStream(in io.Reader, display string, o *options) (*FS, error) {
	br, ok := in.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(in, 64<<10)
	}
	magic, _ := br.Peek(4)
	compressed := len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b ||
		len(magic) >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd
	var r io.Reader = br
	if compressed && magic[0] == 0x1f {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errdefs.Corrupt(fmt.Errorf("%s: gzip: %w", display, err))
		}
		defer zr.Close()
		r = zr
	} else if compressed {
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, errdefs.Corrupt(fmt.Errorf("%s: zstd: %w", display, err))
		}
		defer zr.Close()
		r = zr
	}
	tmp, err := os.CreateTemp(o.tmpDir, "lading-archive-*.tar")
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, errdefs.Corrupt(fmt.Errorf("%s: %w", display, err))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	t, err := index(tmp, display, tmp.Name())
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return t, nil
}

// index reads every header of f once.
func index(f *os.File, display, tmp string) (*FS, error) {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	t := &FS{f: f, tmp: tmp, name: display, members: map[string]*member{}, dirs: map[string][]string{}}
	tr := tar.NewReader(f)
	last := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errdefs.Corrupt(fmt.Errorf("%s: truncated after entry %q", display, last))
			}
			return nil, errdefs.Corrupt(fmt.Errorf("%s: after entry %q: %w", display, last, err))
		}
		if len(t.members) >= MaxMembers {
			return nil, errdefs.TooLarge(fmt.Errorf("%s: more than %d entries", display, MaxMembers))
		}
		if h.Typeflag == tar.TypeDir && path.Clean(h.Name) == "." {
			continue // "./", as tar -C DIR -c . writes the root: implied anyway
		}
		name, err := clean(h.Name)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: entry %q: %w", display, h.Name, err))
		}
		last = h.Name
		m := &member{name: name, typ: h.Typeflag, size: h.Size, mode: h.FileInfo().Mode(), mtime: h.ModTime}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			m.typ = tar.TypeReg
			off, err := f.Seek(0, io.SeekCurrent)
			if err != nil {
				return nil, err
			}
			if h.Size < 0 || off+h.Size > end {
				return nil, errdefs.Corrupt(fmt.Errorf("%s: entry %q: %d bytes run past the end of the archive", display, h.Name, h.Size))
			}
			m.offset = off
		case tar.TypeDir:
		case tar.TypeSymlink:
			if len(h.Linkname) > MaxName {
				return nil, errdefs.InvalidArgument(fmt.Errorf("%s: entry %q: link target too long", display, h.Name))
			}
			m.link = h.Linkname
		case tar.TypeLink:
			l, err := clean(h.Linkname)
			if err != nil {
				return nil, errdefs.InvalidArgument(fmt.Errorf("%s: entry %q: hard link to %q: %w", display, h.Name, h.Linkname, err))
			}
			m.link = l
		default:
			continue // devices, fifos: not content an archive reader serves
		}
		t.add(m)
	}
	for d := range t.dirs {
		sort.Strings(t.dirs[d])
	}
	return t, nil
}

func (t *FS) add(m *member) {
	if _, ok := t.members[m.name]; !ok {
		dir, base := path.Split(m.name)
		dir = strings.TrimSuffix(dir, "/")
		if dir == "" {
			dir = "."
		}
		t.dirs[dir] = append(t.dirs[dir], base)
		// Implied parent directories.
		for d := dir; d != "." && t.members[d] == nil; {
			t.members[d] = &member{name: d, typ: tar.TypeDir, mode: fs.ModeDir | 0o755}
			pd, pb := path.Split(d)
			pd = strings.TrimSuffix(pd, "/")
			if pd == "" {
				pd = "."
			}
			t.dirs[pd] = append(t.dirs[pd], pb)
			d = pd
		}
	}
	t.members[m.name] = m
}

// clean makes a member name relative and canonical and refuses names that
// leave the archive's root.
func clean(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if len(name) > MaxName {
		return "", fmt.Errorf("name longer than %d bytes", MaxName)
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute name")
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("name leaves the archive root")
	}
	if c == "." {
		return "", errors.New("name is the root")
	}
	return c, nil
}

// Close releases the archive.
func (t *FS) Close() error {
	var err error
	if t.f != os.Stdin {
		err = t.f.Close()
	}
	if t.tmp != "" {
		os.Remove(t.tmp)
	}
	return err
}

// Name returns the archive's display name.
func (t *FS) Name() string { return t.name }

// resolve follows links (inside the archive) to a regular file or directory.
func (t *FS) resolve(name string) (*member, error) {
	cur := name
	for hop := 0; hop < maxHops; hop++ {
		m, ok := t.members[cur]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		switch m.typ {
		case tar.TypeSymlink:
			target := m.link
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(cur), target)
			}
			c, err := clean(strings.TrimPrefix(target, "/"))
			if err != nil {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("symlink to %q: %w", m.link, err)}
			}
			cur = c
		case tar.TypeLink:
			cur = m.link
		default:
			return m, nil
		}
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("too many links")}
}

// Section returns a reader over the bytes of a regular member.
func (t *FS) Section(name string) (*io.SectionReader, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	m, err := t.resolve(name)
	if err != nil {
		return nil, err
	}
	if m.typ != tar.TypeReg {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("not a regular file")}
	}
	return io.NewSectionReader(t.f, m.offset, m.size), nil
}

// Open implements fs.FS.
func (t *FS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &dirFile{fi: fileInfo{m: &member{name: ".", typ: tar.TypeDir, mode: fs.ModeDir | 0o755}}, t: t, dir: "."}, nil
	}
	m, err := t.resolve(name)
	if err != nil {
		return nil, err
	}
	if m.typ == tar.TypeDir {
		return &dirFile{fi: fileInfo{m: m, name: name}, t: t, dir: m.name}, nil
	}
	return &file{SectionReader: io.NewSectionReader(t.f, m.offset, m.size), fi: fileInfo{m: m, name: name}}, nil
}

// Stat implements fs.StatFS.
func (t *FS) Stat(name string) (fs.FileInfo, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// ReadDir implements fs.ReadDirFS.
func (t *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := t.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, ok := f.(*dirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return d.ReadDir(-1)
}

// fileInfo describes a member; name, when set, is the name it was reached
// by (a link's own name rather than its target's).
type fileInfo struct {
	m    *member
	name string
}

func (fi fileInfo) Name() string {
	if fi.name != "" {
		return path.Base(fi.name)
	}
	return path.Base(fi.m.name)
}
func (fi fileInfo) Size() int64        { return fi.m.size }
func (fi fileInfo) Mode() fs.FileMode  { return fi.m.mode }
func (fi fileInfo) ModTime() time.Time { return fi.m.mtime }
func (fi fileInfo) IsDir() bool        { return fi.m.typ == tar.TypeDir }
func (fi fileInfo) Sys() any           { return nil }

type file struct {
	*io.SectionReader
	fi fileInfo
}

func (f *file) Stat() (fs.FileInfo, error) { return f.fi, nil }
func (f *file) Close() error               { return nil }

type dirFile struct {
	fi   fileInfo
	t    *FS
	dir  string
	read int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.dir, Err: errors.New("is a directory")}
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	names := d.t.dirs[d.dir][d.read:]
	if n > 0 && len(names) > n {
		names = names[:n]
	}
	if n > 0 && len(names) == 0 {
		return nil, io.EOF
	}
	out := make([]fs.DirEntry, 0, len(names))
	for _, b := range names {
		full := b
		if d.dir != "." {
			full = d.dir + "/" + b
		}
		// Links are reported as what they resolve to; a dangling one as itself.
		m := d.t.members[full]
		if r, err := d.t.resolve(full); err == nil {
			m = r
		}
		out = append(out, fs.FileInfoToDirEntry(fileInfo{m: m, name: full}))
	}
	d.read += len(names)
	return out, nil
}

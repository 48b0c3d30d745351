// Package feed builds a vulnerability database from advisory feeds on disk:
// loose files, directories, zip files (osv.dev's per-ecosystem zips) and
// tarballs (.tar, .tar.gz, .tgz), and single gzipped files. Each file's
// format is recognized from its content:
//
//	OSV JSON and YAML           package osv
//	Alpine secdb YAML and JSON  package alpine
//	Debian DSA and DLA lists    package debian (ParseList)
//	Debian tracker JSON export  package debian (ParseJSON)
//	Ubuntu CVE tracker files    package ubuntu
//	Node Security WG JSON       package nswg
//
// Files of no known format (READMEs, the PyPI database's .id-allocator) are
// counted and left out. A file that cannot be read as its format, or a
// malformed record inside one, is counted per source and reason and logged as
// a warning naming the file; the build goes on. Only I/O errors and
// cancellation stop a build, and a stopped build leaves no database behind.
package feed

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/vulndb"
	"github.com/lading-dev/lading/internal/vulndb/feed/alpine"
	"github.com/lading-dev/lading/internal/vulndb/feed/debian"
	"github.com/lading-dev/lading/internal/vulndb/feed/nswg"
	"github.com/lading-dev/lading/internal/vulndb/feed/osv"
	"github.com/lading-dev/lading/internal/vulndb/feed/ubuntu"
)

// Format names a feed format.
type Format string

// The formats.
const (
	Auto       Format = ""
	OSV        Format = "osv"
	Alpine     Format = "alpine-secdb"
	DebianList Format = "debian-list"
	DebianJSON Format = "debian-json"
	Ubuntu     Format = "ubuntu-cve-tracker"
	NSWG       Format = "nswg"
)

type parseFunc func(context.Context, io.Reader, string, vulndb.Sink) error

// format is one known format: how to recognize it, how to read it, and the
// source its unreadable files are counted under.
type format struct {
	name   Format
	source string
	sniff  func(head []byte) bool
	parse  parseFunc
}

// formats, in the order they are tried: the more specific first (an NSWG
// advisory also has an "id").
var formats = []format{
	{DebianList, debian.SourceDSA, debian.SniffList, debian.ParseList},
	{DebianJSON, debian.SourceTracker, debian.SniffJSON, debian.ParseJSON},
	{NSWG, nswg.Source, nswg.Sniff, nswg.Parse},
	{Alpine, alpine.Source, alpine.Sniff, alpine.Parse},
	{Ubuntu, ubuntu.Source, ubuntu.Sniff, ubuntu.Parse},
	{OSV, osv.Source, osv.Sniff, osv.Parse},
}

// Formats lists the format names, for flags and messages.
func Formats() []Format {
	out := make([]Format, len(formats))
	for i, f := range formats {
		out[i] = f.name
	}
	return out
}

func formatNamed(n Format) (format, bool) {
	for _, f := range formats {
		if f.name == n {
			return f, true
		}
	}
	return format{}, false
}

// Progress reports how far reading has come.
type Progress struct {
	Input string // the input being read
	Files int    // files read from it so far
	Done  bool   // the input is finished
}

type options struct {
	format   Format
	maxFile  int64
	progress func(Progress)
	builtBy  string
}

// Option configures Build and Read.
type Option func(*options)

// WithFormat reads every file as format f instead of recognizing formats.
func WithFormat(f Format) Option { return func(o *options) { o.format = f } }

// WithMaxFileSize limits the size of one file, inside archives too (default
// 2 GiB): larger ones are counted and left out, so that a zip bomb cannot
// fill memory or disk.
func WithMaxFileSize(n int64) Option { return func(o *options) { o.maxFile = n } }

// WithProgress calls fn as inputs are read.
func WithProgress(fn func(Progress)) Option { return func(o *options) { o.progress = fn } }

// WithBuiltBy records what built the database in its metadata.
func WithBuiltBy(s string) Option { return func(o *options) { o.builtBy = s } }

func newOptions(opts []Option) (*options, error) {
	o := &options{maxFile: 2 << 30}
	for _, opt := range opts {
		opt(o)
	}
	if o.format != Auto {
		if _, ok := formatNamed(o.format); !ok {
			return nil, errdefs.InvalidArgument(fmt.Errorf("feed format %q: want one of %v", o.format, Formats()))
		}
	}
	return o, nil
}

// Build reads the inputs and writes a database to out (write, then rename).
// A nil log discards the warnings about records left out (they are still
// counted in the metadata).
func Build(ctx context.Context, log *slog.Logger, out string, inputs []string, opts ...Option) (vulndb.Metadata, error) {
	o, err := newOptions(opts)
	if err != nil {
		return vulndb.Metadata{}, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := vulndb.NewBuilder(log)
	if err := read(ctx, log, b, inputs, o); err != nil {
		return vulndb.Metadata{}, err
	}
	return b.Write(ctx, out, vulndb.Metadata{Builder: o.builtBy})
}

// Read reads the inputs into b. A nil log discards warnings.
func Read(ctx context.Context, log *slog.Logger, b *vulndb.Builder, inputs []string, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return read(ctx, log, b, inputs, o)
}

func read(ctx context.Context, log *slog.Logger, b *vulndb.Builder, inputs []string, o *options) error {
	if len(inputs) == 0 {
		return errdefs.InvalidArgument(errors.New("no feeds to read"))
	}
	for _, in := range inputs {
		if o.progress != nil {
			o.progress(Progress{Input: in})
		}
		r := &reader{ctx: ctx, log: log, b: b, o: o, input: in}
		if err := r.input1(in); err != nil {
			return err
		}
		if r.unknown > 0 {
			log.Info("files of no known feed format left out", "input", in, "count", r.unknown)
		}
		if o.progress != nil {
			o.progress(Progress{Input: in, Files: r.files, Done: true})
		}
	}
	return nil
}

// reader reads one input.
type reader struct {
	ctx     context.Context
	log     *slog.Logger
	b       *vulndb.Builder
	o       *options
	input   string
	files   int
	unknown int
}

func (r *reader) input1(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.NotFound(fmt.Errorf("feed %s: %w", p, err))
		}
		return err
	}
	if !st.IsDir() {
		return r.file(p)
	}
	return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if q != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return r.file(q)
	})
}

// file reads one file from disk: an archive, or a feed file.
func (r *reader) file(p string) error {
	lower := strings.ToLower(p)
	switch {
	case strings.HasSuffix(lower, ".zip"):
		return r.zip(p)
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"), strings.HasSuffix(lower, ".tar"):
		return r.tar(p, !strings.HasSuffix(lower, ".tar"))
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var in io.Reader = f
	name := p
	if strings.HasSuffix(lower, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			r.skipFile(p, fmt.Errorf("%s: %w", p, err))
			return nil
		}
		defer zr.Close()
		in, name = zr, strings.TrimSuffix(p, p[len(p)-3:])
	}
	return r.entry(name, in)
}

func (r *reader) zip(p string) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		r.skipFile(p, fmt.Errorf("%s: %w", p, err))
		return nil
	}
	defer zr.Close()
	for _, f := range zr.File {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		if f.FileInfo().IsDir() || !f.Mode().IsRegular() {
			continue
		}
		name := p + "/" + f.Name
		if f.UncompressedSize64 > uint64(r.o.maxFile) {
			r.tooLarge(name, int64(f.UncompressedSize64))
			continue
		}
		rc, err := f.Open()
		if err != nil {
			r.skipFile(name, fmt.Errorf("%s: %w", name, err))
			continue
		}
		err = r.entry(name, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) tar(p string, gz bool) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var in io.Reader = bufio.NewReaderSize(f, 1<<20)
	if gz {
		zr, err := gzip.NewReader(in)
		if err != nil {
			r.skipFile(p, fmt.Errorf("%s: %w", p, err))
			return nil
		}
		defer zr.Close()
		in = zr
	}
	tr := tar.NewReader(in)
	for {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			r.skipFile(p, fmt.Errorf("%s: %w", p, err))
			return nil
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := p + "/" + strings.TrimPrefix(h.Name, "./")
		if h.Size > r.o.maxFile {
			r.tooLarge(name, h.Size)
			continue
		}
		if err := r.entry(name, tr); err != nil {
			return err
		}
	}
}

func (r *reader) tooLarge(name string, n int64) {
	err := errdefs.TooLarge(fmt.Errorf("%s: %d bytes, more than the limit of %d", name, n, r.o.maxFile))
	r.b.Skip("unknown", "file too large")
	r.log.Warn("feed file left out", "file", name, "err", err)
}

func (r *reader) skipFile(name string, err error) {
	r.b.Skip("unknown", "unreadable file")
	r.log.Warn("feed file left out", "file", name, "err", err)
}

// errTooLarge is what limitReader returns past the limit.
var errTooLarge = errors.New("file larger than the limit")

// limitReader fails, instead of ending, after n bytes.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errdefs.TooLarge(errTooLarge)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// entry recognizes and reads one feed file.
func (r *reader) entry(name string, in io.Reader) error {
	base := path.Base(filepath.ToSlash(name))
	if strings.HasPrefix(base, "00boilerplate") {
		// The Ubuntu tracker's templates.
		return nil
	}
	br := bufio.NewReaderSize(&limitReader{in, r.o.maxFile}, 64<<10)
	head, err := br.Peek(64 << 10)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		if errors.Is(err, errTooLarge) {
			r.tooLarge(name, r.o.maxFile)
			return nil
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	f, ok := r.detect(head)
	if !ok {
		r.unknown++
		r.log.Debug("not a known feed format", "file", name)
		return nil
	}
	r.files++
	if r.o.progress != nil && r.files%500 == 0 {
		r.o.progress(Progress{Input: r.input, Files: r.files})
	}
	sink := &fileSink{b: r.b, log: r.log, file: name}
	err = f.parse(r.ctx, br, name, sink)
	// The file counts for the source its records went to (a DLA list
	// for debian-dla, Go.zip's files for osv:Go).
	r.b.AddFile(sink.source(f.source))
	if err != nil {
		if ctxErr := r.ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if errors.Is(err, errTooLarge) {
			r.tooLarge(name, r.o.maxFile)
			return nil
		}
		sink.Skip(sink.source(f.source), "malformed file", err)
	}
	return nil
}

func (r *reader) detect(head []byte) (format, bool) {
	if r.o.format != Auto {
		return formatNamed(r.o.format)
	}
	for _, f := range formats {
		if f.sniff(head) {
			return f, true
		}
	}
	return format{}, false
}

// fileSink passes a parser's records to the builder and logs what it
// leaves out, naming the file.
type fileSink struct {
	b       *vulndb.Builder
	log     *slog.Logger
	file    string
	lastSrc string
}

func (s *fileSink) Add(r vulndb.Record) {
	s.lastSrc = r.Source
	s.b.Add(r)
}

func (s *fileSink) Skip(source, reason string, err error) {
	if s.lastSrc == "" {
		s.lastSrc = source
	}
	s.b.Skip(source, reason)
	if err != nil {
		s.log.Warn("malformed feed data left out", "file", s.file, "source", source, "reason", reason, "err", err)
	}
}

// source is the source a file's records went to, or the format's.
func (s *fileSink) source(def string) string {
	if s.lastSrc != "" {
		return s.lastSrc
	}
	return def
}

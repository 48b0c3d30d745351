package analyze

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"runtime/debug"
	"strconv"

	"github.com/lading-dev/lading/internal/analyze/analyzer"
	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/layer"
)

// resultFormat is the version of the encoding of cached parts; it is part
// of every part's cache key.
const resultFormat = 1

// part is what one analyzer found in one layer.
type part struct {
	Results []*analyzer.Result `json:"results,omitempty"`
	// Links are hard links of the layer to files of lower layers that the
	// analyzer wants: the merge gives them the result of their target.
	Links []link `json:"links,omitempty"`
	// Warnings are files the analyzer could not analyze.
	Warnings []Warning `json:"warnings,omitempty"`
}

type link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// layerOutcome is everything known about one layer.
type layerOutcome struct {
	info  LayerInfo
	index *pathIndex
	parts map[string]*part // by analyzer name
	// warnings are about the layer as a whole (unreadable, truncated).
	warnings []Warning
	// stored is set when results were written to the cache.
	stored bool
}

func partKey(a analyzer.Analyzer) string {
	return a.Name() + "@" + strconv.Itoa(a.Version()) + ".f" + strconv.Itoa(resultFormat)
}

// The cache holds, for each layer blob, one layer entry (the diffID its
// content had when it was read, the path index, and for each analyzer part
// computed whether it found anything) and one entry per part that found
// something: a layer that most analyzers find nothing in costs one or two
// files, not one per analyzer. Entries are keyed by the blob's digest,
// never by the config's diffID (a claim; see package cache).
const layerPart = "layer@2"

// layerEntry is the layer entry: a magic, the JSON of the parts, then the
// path index.
type layerEntry struct {
	// DiffID is the digest of the blob's uncompressed content, as found
	// when the blob was read and verified.
	DiffID string          `json:"diff_id"`
	Parts  map[string]bool `json:"parts"` // part key → has an entry of its own
	index  *pathIndex
}

var layerMagic = []byte("lading-layer\x00\x02")

func (e *layerEntry) marshal() []byte {
	j, _ := json.Marshal(e)
	x, _ := e.index.MarshalBinary()
	b := append([]byte{}, layerMagic...)
	b = binary.AppendUvarint(b, uint64(len(j)))
	return append(append(b, j...), x...)
}

func (e *layerEntry) unmarshal(b []byte) error {
	bad := errors.New("malformed layer entry")
	rest, ok := bytes.CutPrefix(b, layerMagic)
	if !ok {
		return bad
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return bad
	}
	if err := json.Unmarshal(rest[k:k+int(n)], e); err != nil || e.DiffID == "" {
		return bad
	}
	e.index = &pathIndex{}
	return e.index.UnmarshalBinary(rest[k+int(n):])
}

// analyzeLayer returns the outcome of one layer, from the cache where it
// can and by reading the layer once for the rest. The error is an
// *IntegrityError, or the context's.
func (o *options) analyzeLayer(ctx context.Context, i int, src LayerSource, name string) (*layerOutcome, error) {
	out := &layerOutcome{
		info:  LayerInfo{Index: i, DiffID: src.DiffID, Digest: src.Digest, CreatedBy: src.CreatedBy},
		parts: make(map[string]*part),
	}
	fail := func(err error) (*layerOutcome, error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, &IntegrityError{Name: name, Index: i, Digest: src.Digest, DiffID: src.DiffID, Err: err}
	}
	var need []analyzer.Analyzer
	useCache := o.cache != nil && src.Digest != ""
	entry := &layerEntry{Parts: map[string]bool{}}
	if useCache {
		if b, ok, err := o.cache.Get(ctx, cache.Key{Digest: src.Digest, Part: layerPart}); err == nil && ok {
			var e layerEntry
			if e.unmarshal(b) == nil {
				entry = &e
				out.index = e.index
			}
		}
		for _, a := range o.analyzers {
			if p := o.cachedPart(ctx, src.Digest, entry, a); p != nil {
				out.parts[a.Name()] = p
				continue
			}
			need = append(need, a)
		}
	} else {
		need = o.analyzers
	}
	if out.index != nil && len(need) == 0 {
		// What the blob was found to be when it was read must be what the
		// config says it is; and the image must have the blob.
		if src.DiffID != "" && src.DiffID != entry.DiffID {
			return fail(diffIDMismatch(src.DiffID, entry.DiffID))
		}
		switch {
		case src.Digest == src.DiffID && src.Verify != nil:
			if err := src.Verify(ctx); err != nil {
				return fail(err)
			}
		case src.Present != nil:
			if err := src.Present(ctx); err != nil {
				return fail(err)
			}
		}
		out.info.DiffID = entry.DiffID
		out.info.Cached = true
		o.log.Debug("layer results from the cache", "layer", name)
		return out, nil
	}
	o.log.Debug("reading layer", "layer", name, "analyzers", len(need))
	w := &walk{o: o, ctx: ctx, layer: i, name: name, analyzers: need, parts: make(map[string]*part)}
	diffID, warn, err := w.run(src)
	if err != nil {
		return fail(err)
	}
	for _, a := range need {
		out.parts[a.Name()] = w.parts[a.Name()]
	}
	out.index = w.index.build()
	out.info.DiffID = diffID
	if w.warning != "" {
		out.warnings = append(out.warnings, Warning{Layer: i, Message: w.warning})
	}
	if warn != nil {
		out.warnings = append(out.warnings, Warning{Layer: i, Message: warn.Error()})
		return out, nil // incomplete: not cached
	}
	if useCache {
		entry.DiffID = diffID
		entry.index = out.index
		o.store(ctx, src.Digest, entry, out, need)
		out.stored = true
	}
	return out, nil
}

// cachedPart returns a's part of the layer from the cache, or nil.
func (o *options) cachedPart(ctx context.Context, digest string, e *layerEntry, a analyzer.Analyzer) *part {
	stored, ok := e.Parts[partKey(a)]
	switch {
	case !ok:
		return nil
	case !stored:
		return &part{} // the analyzer found nothing in the layer
	}
	b, ok, err := o.cache.Get(ctx, cache.Key{Digest: digest, Part: partKey(a)})
	if err != nil || !ok {
		return nil
	}
	var p part
	if json.Unmarshal(b, &p) != nil {
		return nil
	}
	return &p
}

func (o *options) store(ctx context.Context, digest string, e *layerEntry, out *layerOutcome, written []analyzer.Analyzer) {
	entries := map[string][]byte{}
	for _, a := range written {
		p := out.parts[a.Name()]
		empty := p == nil || len(p.Results) == 0 && len(p.Links) == 0 && len(p.Warnings) == 0
		e.Parts[partKey(a)] = !empty
		if !empty {
			b, err := json.Marshal(p)
			if err != nil {
				return
			}
			entries[partKey(a)] = b
		}
	}
	entries[layerPart] = e.marshal()
	if err := o.cache.PutAll(ctx, digest, entries); err != nil {
		o.log.Warn("cannot cache layer results", "digest", digest, "error", err)
	}
}

// walk reads one layer for a set of analyzers.
type walk struct {
	o         *options
	ctx       context.Context
	layer     int
	name      string
	analyzers []analyzer.Analyzer
	parts     map[string]*part
	index     indexBuilder
	// files are the regular files of the layer so far that analyzers found
	// something in, by path hash, with the results, for hard links to them.
	files map[uint64]fileRec
	// warning is about how the blob was read (its media type).
	warning string
}

// fileRec is what a hard link needs of its target: its size and mode (not
// the tar header, which would keep every header of the layer alive) and the
// results made of it.
type fileRec struct {
	size    int64
	mode    fs.FileMode
	results *[]owned
}

// owned is a result and the analyzer that made it.
type owned struct {
	analyzer string
	r        *analyzer.Result
}

func (w *walk) part(name string) *part {
	p := w.parts[name]
	if p == nil {
		p = &part{}
		w.parts[name] = p
	}
	return p
}

func (w *walk) warn(a, path, msg string) {
	p := w.part(a)
	if path != "" {
		path = "/" + path
	}
	p.Warnings = append(p.Warnings, Warning{Layer: w.layer, Path: path, Analyzer: a, Message: msg})
}

// run reads the layer stream to its end, so that the blob is verified
// against its digest and the content hashed, and calls the analyzers. It
// returns the diffID of the content. err is an integrity failure (the
// stream cannot be opened or read to its end, or its content does not
// match the config's diffID); warn is a layer whose bytes are what the
// image says but whose entries the walker refuses (results found before
// the problem are kept).
func (w *walk) run(src LayerSource) (diffID string, warn, err error) {
	for _, a := range w.analyzers {
		w.part(a.Name())
	}
	w.files = make(map[uint64]fileRec)
	if src.Open == nil {
		return "", nil, errors.New("no layer stream")
	}
	rc, err := src.Open(w.ctx)
	if err != nil {
		return "", nil, err
	}
	defer rc.Close()
	if ws, ok := rc.(interface{ Warning() string }); ok {
		w.warning = ws.Warning()
	}
	dr, err := newDiffIDReader(rc, src.DiffID)
	if err != nil {
		return "", nil, err
	}
	walkErr := layer.Walk(w.ctx, dr, w.entry, layer.WithName(w.name), layer.AllowDevices())
	if err := w.ctx.Err(); err != nil {
		return "", nil, err
	}
	// The rest of the stream (tar padding, or what follows an entry the
	// walker refused) is read for the blob and the content to be checked;
	// a failure there is the cause of whatever the walker saw.
	if err := drain(dr); err != nil {
		return "", nil, err
	}
	diffID = dr.sum()
	if src.DiffID != "" && diffID != src.DiffID {
		return "", nil, diffIDMismatch(src.DiffID, diffID)
	}
	if walkErr != nil {
		var le *layer.Error
		if !errors.As(walkErr, &le) {
			return "", nil, walkErr // not about the layer's entries
		}
		return diffID, walkErr, nil
	}
	w.post()
	return diffID, nil, nil
}

func (w *walk) entry(e *layer.Entry) error {
	h := w.index.add(e)
	switch e.Kind {
	case layer.KindRegular:
		return w.file(e, h)
	case layer.KindHardlink:
		w.hardlink(e, h)
	}
	return nil
}

func (w *walk) file(e *layer.Entry, h uint64) error {
	info := e.Header.FileInfo()
	var wanters []analyzer.Analyzer
	for _, a := range w.analyzers {
		if analyzer.Wanted(a, e.Name, info) {
			wanters = append(wanters, a)
		}
	}
	if len(wanters) == 0 {
		return nil
	}
	f := analyzer.NewFile(e.Name, info, e, &w.o.scratch)
	defer f.Close()
	views := f.Views(len(wanters))
	var results []owned
	for k, a := range wanters {
		r, err := analyzeFile(w.ctx, a, views[k])
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			var le *layer.Error
			if errors.As(err, &le) {
				return err // the layer stream itself failed
			}
			w.warn(a.Name(), e.Name, err.Error())
			continue
		}
		if r == nil {
			continue
		}
		r.Path = e.Name
		if r.Type == "" {
			r.Type = a.Name()
		}
		p := w.part(a.Name())
		p.Results = append(p.Results, r)
		results = append(results, owned{a.Name(), r})
	}
	if len(results) > 0 {
		w.files[h] = fileRec{size: info.Size(), mode: info.Mode(), results: &results}
	}
	return nil
}

// analyzeFile calls a.Analyze, turning a panic into an error.
func analyzeFile(ctx context.Context, a analyzer.Analyzer, f *analyzer.File) (r *analyzer.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			r, err = nil, fmt.Errorf("analyzer failed: %v\n%s", v, debug.Stack())
		}
	}()
	return a.Analyze(ctx, f)
}

// hardlink makes a hard link another name of its target's results: of the
// same result when the target is a file of this layer, of whatever the
// target is in the lower layers (resolved when merging) otherwise. Whether
// an analyzer wants the link is asked with the target's file info when the
// target is in this layer, with the link's own header (size 0) otherwise.
func (w *walk) hardlink(e *layer.Entry, h uint64) {
	t := e.Linkname
	if e.LinkInLayer() {
		rec, ok := w.files[pathHash(t)]
		if !ok {
			return // a file no analyzer found anything in
		}
		info := analyzer.FileInfo(e.Name, rec.size, rec.mode)
		for _, a := range w.analyzers {
			if !analyzer.Wanted(a, e.Name, info) {
				continue
			}
			for _, x := range *rec.results {
				if x.analyzer == a.Name() {
					x.r.Aliases = append(x.r.Aliases, e.Name)
				}
			}
		}
		w.files[h] = rec
		return
	}
	info := e.Header.FileInfo()
	for _, a := range w.analyzers {
		if analyzer.Wanted(a, e.Name, info) {
			p := w.part(a.Name())
			p.Links = append(p.Links, link{Path: e.Name, Target: t})
		}
	}
}

// post runs the post-pass of the analyzers that have one.
func (w *walk) post() {
	for _, a := range w.analyzers {
		pa, ok := a.(analyzer.PostAnalyzer)
		if !ok {
			continue
		}
		p := w.part(a.Name())
		rs, err := postAnalyze(w.ctx, pa, p.Results)
		if err != nil {
			w.warn(a.Name(), "", err.Error())
			continue
		}
		p.Results = rs
	}
}

func postAnalyze(ctx context.Context, pa analyzer.PostAnalyzer, rs []*analyzer.Result) (out []*analyzer.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, fmt.Errorf("post-pass failed: %v", v)
		}
	}()
	return pa.PostAnalyze(ctx, rs)
}

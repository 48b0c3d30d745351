package sbom

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
)

// stream writes a JSON object member by member, and arrays element by
// element, so that a document of any size is never held whole: each value
// is marshaled on its own and written at once. The output is indented two
// spaces per level, like encoding/json's MarshalIndent.
type stream struct {
	w     *bufio.Writer
	err   error
	first []bool // per open container: nothing written in it yet
}

func newStream(w io.Writer) *stream {
	s := &stream{w: bufio.NewWriterSize(w, 64<<10)}
	s.raw("{")
	s.first = append(s.first, true)
	return s
}

func (s *stream) raw(str string) {
	if s.err == nil {
		_, s.err = s.w.WriteString(str)
	}
}

func (s *stream) indent() string {
	b := make([]byte, 1+2*len(s.first))
	b[0] = '\n'
	for i := 1; i < len(b); i++ {
		b[i] = ' '
	}
	return string(b)
}

// next starts the next member or element.
func (s *stream) next() {
	top := len(s.first) - 1
	if !s.first[top] {
		s.raw(",")
	}
	s.first[top] = false
	s.raw(s.indent())
}

func (s *stream) marshal(v any) {
	if s.err != nil {
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent(s.indent()[1:], "  ")
	if s.err = enc.Encode(v); s.err == nil {
		s.raw(string(bytes.TrimRight(b.Bytes(), "\n")))
	}
}

// field writes a member of the current object.
func (s *stream) field(name string, v any) {
	s.next()
	s.marshal(name)
	s.raw(": ")
	s.marshal(v)
}

// beginArray starts a member of the current object that is an array.
func (s *stream) beginArray(name string) {
	s.next()
	s.marshal(name)
	s.raw(": [")
	s.first = append(s.first, true)
}

// beginObject starts an element of the current array that is an object.
func (s *stream) beginObject() {
	s.next()
	s.raw("{")
	s.first = append(s.first, true)
}

// elem writes an element of the current array.
func (s *stream) elem(v any) {
	s.next()
	s.marshal(v)
}

// end closes the current array or object.
func (s *stream) end(closer string) {
	empty := s.first[len(s.first)-1]
	s.first = s.first[:len(s.first)-1]
	if !empty {
		s.raw(s.indent())
	}
	s.raw(closer)
}

// close ends the document and flushes it.
func (s *stream) close() error {
	s.end("}")
	s.raw("\n")
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

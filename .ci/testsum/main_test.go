package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// testdata/run.json is `go test -json ./...` of a module with a package whose
// tests pass (with a subtest), fail and skip, one that does not build, and one
// whose TestMain exits 3.
func TestSummary(t *testing.T) {
	f, err := os.Open("testdata/run.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	s := newSummary(&out, true)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		s.add(e)
	}
	s.report("tests")
	got := s.total()
	if want := (counts{run: 4, pass: 2, fail: 3, skip: 1}); got != want {
		t.Errorf("total = %+v, want %+v", got, want)
	}
	for _, want := range []string{
		"a_test.go:4: why it failed",                     // a failing test's output
		"a_test.go:5: designed",                          // a skipped test's output
		"cannot use \"s\" (untyped string constant)",     // the build error
		"=== FAILED example.com/ts/c (outside any test)", // TestMain's exit
		"\ntests: 2 passed, 3 failed, 1 skipped\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

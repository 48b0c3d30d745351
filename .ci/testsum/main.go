// Command testsum reads the output of `go test -json` on standard input and
// says what the run proved: as the events arrive it prints each package's
// closing line (ok, FAIL, no test files) and the whole output of every test
// that failed or skipped; at the end, a table of tests run, passed, failed and
// skipped per package, the totals, and a closing line
// "NAME: N passed, N failed, N skipped".
//
// Every test counts, and so does every subtest (t.Run), fuzz seed and
// example: a test with three subtests is four tests. A package that fails
// without a failing test (a build error, a panic in TestMain, a timeout)
// counts as one failure. The exit status is 1 when anything failed, when no
// test ran at all, or, with -no-skips, when any test skipped.
//
//	go test -json ./... | go run ./.ci/testsum -name tests
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string
	ImportPath  string
}

// counts is what a package (or the run) proved.
type counts struct {
	run, pass, fail, skip int
	pkgFail               bool // the package failed outside any test
}

// summary collects the events of a run.
type summary struct {
	out      io.Writer
	pkgs     map[string]*counts
	output   map[string][]string // package + "\x00" + test -> its output lines
	build    map[string][]string // import path -> build output
	showSkip bool
}

func newSummary(out io.Writer, showSkip bool) *summary {
	return &summary{out: out, pkgs: map[string]*counts{}, output: map[string][]string{}, build: map[string][]string{}, showSkip: showSkip}
}

func (s *summary) pkg(name string) *counts {
	c := s.pkgs[name]
	if c == nil {
		c = &counts{}
		s.pkgs[name] = c
	}
	return c
}

// add takes one event.
func (s *summary) add(e event) {
	if e.Action == "build-output" {
		s.build[e.ImportPath] = append(s.build[e.ImportPath], e.Output)
		return
	}
	if e.Action == "build-fail" {
		fmt.Fprintf(s.out, "BUILD FAIL %s\n%s", e.ImportPath, strings.Join(s.build[e.ImportPath], ""))
		return
	}
	if e.Package == "" {
		if e.Output != "" {
			fmt.Fprint(s.out, e.Output)
		}
		return
	}
	c := s.pkg(e.Package)
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "output":
		s.output[key] = append(s.output[key], e.Output)
		if e.Test == "" && isClosing(e.Output) {
			fmt.Fprint(s.out, e.Output)
		}
	case "run":
		if e.Test != "" {
			c.run++
		}
	case "pass":
		if e.Test != "" {
			c.pass++
		}
		delete(s.output, key)
	case "skip":
		if e.Test != "" {
			c.skip++
			if s.showSkip {
				fmt.Fprintf(s.out, "--- SKIP %s %s\n%s", e.Package, e.Test, strings.Join(s.output[key], ""))
			}
		}
		delete(s.output, key)
	case "fail":
		if e.Test != "" {
			c.fail++
			fmt.Fprintf(s.out, "=== FAILED %s %s\n%s", e.Package, e.Test, strings.Join(s.output[key], ""))
		} else if c.fail == 0 {
			// The package failed with no failing test: show what
			// it printed outside its tests (a panic, a timeout, a
			// build error).
			c.pkgFail = true
			if e.FailedBuild == "" { // build failures were shown at build-fail
				fmt.Fprintf(s.out, "=== FAILED %s (outside any test)\n%s", e.Package, strings.Join(s.output[key], ""))
			}
		}
		delete(s.output, key)
	}
}

// isClosing reports whether a package-level output line is go test's
// verdict on the package ("ok ...", "FAIL ...", "? ... [no test files]").
func isClosing(l string) bool {
	return strings.HasPrefix(l, "ok  \t") || strings.HasPrefix(l, "FAIL\t") || strings.HasPrefix(l, "?   \t")
}

// total adds up the packages; a package failure outside any test counts as
// one failed test.
func (s *summary) total() counts {
	var t counts
	for _, c := range s.pkgs {
		t.run += c.run
		t.pass += c.pass
		t.fail += c.fail
		t.skip += c.skip
		if c.pkgFail {
			t.fail++
		}
	}
	return t
}

// report prints the table and the closing line.
func (s *summary) report(name string) {
	names := make([]string, 0, len(s.pkgs))
	for p, c := range s.pkgs {
		if c.run > 0 || c.pkgFail {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	fmt.Fprintf(s.out, "\n== %s: tests per package (subtests, fuzz seeds and examples count as tests)\n", name)
	tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "package\trun\tpassed\tfailed\tskipped\t")
	for _, p := range names {
		c := s.pkgs[p]
		fail := fmt.Sprint(c.fail)
		if c.pkgFail {
			fail += "+pkg"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t\n", p, c.run, c.pass, fail, c.skip)
	}
	t := s.total()
	fmt.Fprintf(tw, "total (%d packages)\t%d\t%d\t%d\t%d\t\n", len(names), t.run, t.pass, t.fail, t.skip)
	tw.Flush()
	fmt.Fprintf(s.out, "%s: %d passed, %d failed, %d skipped\n", name, t.pass, t.fail, t.skip)
}

func main() {
	name := flag.String("name", "tests", "one word naming the run in the closing line")
	showSkip := flag.Bool("show-skips", true, "print the output of every skipped test")
	noSkips := flag.Bool("no-skips", false, "fail when any test skipped (a pass that must check everything)")
	flag.Parse()
	s := newSummary(os.Stdout, *showSkip)
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// go test prints some things outside the JSON stream
			// (build errors of packages without tests, go vet).
			fmt.Println(sc.Text())
			continue
		}
		s.add(e)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(1)
	}
	s.report(*name)
	t := s.total()
	if t.fail > 0 {
		os.Exit(1)
	}
	if *noSkips && t.skip > 0 {
		fmt.Fprintf(os.Stderr, "testsum: %d tests skipped in a pass that must check everything (see their output above)\n", t.skip)
		os.Exit(1)
	}
	if t.run == 0 {
		fmt.Fprintln(os.Stderr, "testsum: no test ran")
		os.Exit(1)
	}
}

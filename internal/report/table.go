package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TableOptions shape the table.
type TableOptions struct {
	// Color paints severities with ANSI colors (for terminals).
	Color bool
	// GroupByLayer shows findings per layer, the base image's layers
	// apart from those added on top, instead of per target.
	GroupByLayer bool
	// Suppressed, when not nil, is listed after the findings.
	Suppressed []Suppression
	// TitleWidth bounds the title column (default 48).
	TitleWidth int
}

// WriteTable writes r as text tables: per target (or per layer), a
// header, a total line and a table of findings; then the packages removed
// by higher layers, for information.
func WriteTable(w io.Writer, r *Report, o TableOptions) error {
	if o.TitleWidth == 0 {
		o.TitleWidth = 48
	}
	tw := &errWriter{w: w}
	if r.Metadata.OS != nil && r.Metadata.OS.EOSL {
		fmt.Fprintf(tw, "WARNING: %s %s is no longer supported by its distribution; it receives no security fixes.\n\n", r.Metadata.OS.Family, r.Metadata.OS.Name)
	}
	if r.Unscanned() && o.GroupByLayer {
		// (Per target, the OS packages' section says it.)
		fmt.Fprintf(tw, "WARNING: %s\n\n", r.Metadata.OS.Unscanned.Message)
	}
	if o.GroupByLayer {
		writeByLayer(tw, r, o)
	} else {
		for _, res := range r.Results {
			if res.Unscanned != nil {
				title := res.Target
				fmt.Fprintf(tw, "%s\n%s\nTotal: unknown. %s\n\n", title, strings.Repeat("=", utf8.RuneCountInString(title)), res.Unscanned.Message)
				continue
			}
			writeSection(tw, res.Target, res.Vulnerabilities, o, true)
		}
	}
	if len(r.Removed) > 0 {
		fmt.Fprintln(tw, "Removed packages (informational)")
		fmt.Fprintln(tw, "================================")
		fmt.Fprintln(tw, "A lower layer installed these packages and a higher layer removed them: they are not in the")
		fmt.Fprintln(tw, "container's filesystem, but their bytes ship in the image. Not counted in totals or exit codes.")
		fmt.Fprintln(tw)
		rows := [][]string{{"Package", "Version", "Declared in", "Installed in", "Removed in", "Vulnerabilities"}}
		for _, p := range r.Removed {
			counts := Result{Vulnerabilities: p.Vulnerabilities}.Counts()
			var vs []string
			for i := len(Severities) - 1; i >= 0; i-- {
				if n := counts[Severities[i]]; n > 0 {
					vs = append(vs, fmt.Sprintf("%s: %d", Severities[i], n))
				}
			}
			if len(vs) == 0 {
				vs = []string{"none"}
			}
			rows = append(rows, []string{p.PkgName, p.Version, p.PkgPath, layerText(p.InstalledIn), layerText(p.RemovedIn), strings.Join(vs, ", ")})
		}
		box(tw, rows, nil)
		fmt.Fprintln(tw)
		for _, p := range r.Removed {
			if len(p.Vulnerabilities) > 0 {
				writeSection(tw, p.PkgName+" "+p.Version+" (removed)", p.Vulnerabilities, o, false)
			}
		}
	}
	if len(o.Suppressed) > 0 {
		fmt.Fprintf(tw, "Suppressed: %d\n", len(o.Suppressed))
		rows := [][]string{{"Library", "Vulnerability", "Target", "Reason"}}
		for _, s := range o.Suppressed {
			rows = append(rows, []string{s.Finding.PkgName, s.Finding.VulnerabilityID, s.Target, s.Reason})
		}
		box(tw, rows, nil)
		fmt.Fprintln(tw)
	}
	return tw.err
}

// writeSection writes one header, its total and its table.
func writeSection(w io.Writer, title string, fs []Finding, o TableOptions, layerColumn bool) {
	fmt.Fprintln(w, title)
	fmt.Fprintln(w, strings.Repeat("=", utf8.RuneCountInString(title)))
	counts := Result{Vulnerabilities: fs}.Counts()
	var parts []string
	total := 0
	for _, s := range Severities {
		parts = append(parts, fmt.Sprintf("%s: %d", s, counts[s]))
		total += counts[s]
	}
	fmt.Fprintf(w, "Total: %d (%s)", total, strings.Join(parts, ", "))
	if n := len(fs) - total; n > 0 {
		fmt.Fprintf(w, "; %d under investigation, not counted", n)
	}
	fmt.Fprint(w, "\n\n")
	if len(fs) == 0 {
		return
	}
	header := []string{"Library", "Vulnerability", "Severity", "Status", "Installed Version", "Fixed Version", "Title"}
	if layerColumn {
		header = append(header, "Layer")
	}
	rows := [][]string{header}
	var colors []string
	for _, f := range fs {
		title := f.Title
		if title == "" {
			title = firstLine(f.Description)
		}
		title = clip(title, o.TitleWidth)
		if f.PrimaryURL != "" {
			title = clip(title, o.TitleWidth) + "\n" + f.PrimaryURL
		}
		row := []string{f.PkgName, f.VulnerabilityID, f.Severity, strings.ReplaceAll(f.Status, "_", " "), f.InstalledVersion, strings.ReplaceAll(f.FixedVersion, ", ", ",\n"), title}
		if layerColumn {
			row = append(row, layerLabel(f.Layer))
		}
		rows = append(rows, row)
		colors = append(colors, f.Severity)
	}
	var paint func(row, col int, s string) string
	if o.Color {
		paint = func(row, col int, s string) string {
			if col != 2 || row == 0 {
				return s
			}
			return colorize(colors[row-1], s)
		}
	}
	box(w, rows, paint)
	fmt.Fprintln(w)
}

// layerText is a layer's index and command, for the removed-packages table.
func layerText(l *Layer) string {
	if l == nil {
		return ""
	}
	s := strconv.Itoa(l.Index)
	if l.CreatedBy != "" {
		s += ": " + clip(l.CreatedBy, 40)
	}
	return s
}

func layerLabel(l *Layer) string {
	if l == nil {
		return ""
	}
	s := strconv.Itoa(l.Index)
	if l.Base {
		s += " (base)"
	}
	return s
}

// writeByLayer writes one section per layer that brought a vulnerable
// package, base layers first under their own heading.
func writeByLayer(w io.Writer, r *Report, o TableOptions) {
	type group struct {
		layer    Layer
		findings []Finding
	}
	groups := map[int]*group{}
	for _, res := range r.Results {
		for _, f := range res.Vulnerabilities {
			l := Layer{Index: -1}
			if f.Layer != nil {
				l = *f.Layer
			}
			g := groups[l.Index]
			if g == nil {
				g = &group{layer: l}
				groups[l.Index] = g
			}
			g.findings = append(g.findings, f)
		}
	}
	var idx []int
	for i := range groups {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	base, added := 0, 0
	for _, i := range idx {
		if groups[i].layer.Base {
			base += len(groups[i].findings)
		} else {
			added += len(groups[i].findings)
		}
	}
	fmt.Fprintf(w, "Base image layers: %d findings. Layers added on top: %d findings.\n\n", base, added)
	for _, i := range idx {
		g := groups[i]
		kind := "added"
		if g.layer.Base {
			kind = "base image"
		}
		title := fmt.Sprintf("Layer %d (%s)", g.layer.Index, kind)
		if g.layer.Index < 0 {
			title = "Layer unknown"
		}
		if g.layer.CreatedBy != "" {
			title += ": " + clip(strings.Join(strings.Fields(g.layer.CreatedBy), " "), 80)
		}
		if g.layer.DiffID != "" {
			fmt.Fprintf(w, "%s\n", g.layer.DiffID)
		}
		writeSection(w, title, g.findings, o, false)
	}
}

// firstLine is a description's first sentence: up to a newline or a
// period followed by a space (so "before 2.32.1" is not cut).
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func colorize(sev, s string) string {
	code := ""
	switch sev {
	case Critical:
		code = "1;31"
	case High:
		code = "31"
	case Medium:
		code = "33"
	case Low:
		code = "34"
	default:
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// box draws rows as a table with box-drawing lines; cells may hold several
// lines. paint, if set, styles a cell's text after it is padded.
func box(w io.Writer, rows [][]string, paint func(row, col int, s string) string) {
	if len(rows) == 0 {
		return
	}
	cols := len(rows[0])
	width := make([]int, cols)
	for _, r := range rows {
		for c, cell := range r {
			for _, line := range strings.Split(cell, "\n") {
				if n := utf8.RuneCountInString(line); n > width[c] {
					width[c] = n
				}
			}
		}
	}
	rule := func(l, m, r string) {
		var b strings.Builder
		b.WriteString(l)
		for c := 0; c < cols; c++ {
			b.WriteString(strings.Repeat("─", width[c]+2))
			if c < cols-1 {
				b.WriteString(m)
			}
		}
		b.WriteString(r)
		fmt.Fprintln(w, b.String())
	}
	rule("┌", "┬", "┐")
	for ri, r := range rows {
		lines := 1
		for _, cell := range r {
			if n := strings.Count(cell, "\n") + 1; n > lines {
				lines = n
			}
		}
		for li := 0; li < lines; li++ {
			var b strings.Builder
			b.WriteString("│")
			for c := 0; c < cols; c++ {
				parts := strings.Split(r[c], "\n")
				text := ""
				if li < len(parts) {
					text = parts[li]
				}
				padded := text + strings.Repeat(" ", width[c]-utf8.RuneCountInString(text))
				if paint != nil && text != "" {
					padded = paint(ri, c, text) + strings.Repeat(" ", width[c]-utf8.RuneCountInString(text))
				}
				b.WriteString(" " + padded + " │")
			}
			fmt.Fprintln(w, b.String())
		}
		if ri == 0 {
			rule("├", "┼", "┤")
		}
	}
	rule("└", "┴", "┘")
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, nil
}

package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/report"
	"github.com/lading-dev/lading/internal/sbom"
	"github.com/lading-dev/lading/internal/scan"
	"github.com/lading-dev/lading/internal/vulndb"
)

type scanFlags struct {
	imageFlags
	db             dbFlags
	sbom           string
	format         string
	output         string
	template       string
	severity       []string
	ignoreUnfixed  bool
	pkgTypes       []string
	ignoreFile     string
	vex            []string
	exitCode       int
	groupBy        string
	showSuppressed bool
	baseLayers     int
	noCache        bool
	untriaged      bool
	exitUnknownOS  int
	mode           modeFlag
}

func newScanCommand(e *env) *cobra.Command {
	var f scanFlags
	cmd := &cobra.Command{
		Use:   "scan IMAGE | --sbom FILE",
		Short: "Scan an image (or an SBOM) for known vulnerabilities",
		Long: `Scan an image for known vulnerabilities of its OS and language packages, without
a Docker engine: lading reads the image's layers (any transport: a registry, the
local store, oci:, oci-archive:, docker-archive:, docker-daemon:, dir:), analyzes
each layer once (results are cached by layer), and matches the packages against
the vulnerability database with each ecosystem's version rules. --sbom scans
the packages a CycloneDX or SPDX JSON document lists instead.

The database is read from --db (default $LADING_DB, else the file under your
cache directory); nothing is downloaded during a scan, so it works where the
network is closed. Build one offline with lading db build --from FEEDS.

Every finding names the layer that brought its package (diffID and the
history's created_by); --group-by layer shows findings per layer, the base
image's layers apart from those added on top. Packages that a lower layer
installed and a higher layer removed are listed apart, for information.

--mode image (the default) scans what is installed, as Trivy and Syft do for
images: node_modules rather than package-lock.json, a Go binary's modules
rather than go.mod. --mode fs DIR scans a source tree: its lockfiles and
manifests as well as what is installed in it.

Filters: --severity, --ignore-unfixed, --pkg-types, an ignore file (default
.ladingignore in the current directory when present; see README), and VEX
documents (OpenVEX or CycloneDX). --exit-code N makes lading exit with N when
findings remain after filtering; errors exit with 1 and usage errors with 2, so
N may be neither.

Findings the distribution has not evaluated yet (Ubuntu's needs-triage, status
under_investigation) are left out, as Trivy leaves them out; --include-untriaged
lists them, and they still count in no total and no exit code.

When the database has no advisories for the image's OS release, its OS
packages cannot be checked: the report says so (and which releases the
database covers) instead of a clean total, and --exit-on-unknown-os N exits
with N (before --exit-code).`,
		Example: `  lading scan alpine:3.20
  lading scan --db vuln.db --severity HIGH,CRITICAL --exit-code 4 oci-archive:app.oci.tar
  lading scan --format sarif -o results.sarif docker-archive:app.tar
  lading scan --sbom app.cdx.json --format json
  lading scan --mode fs ./myproject`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (f.sbom != "") {
				return errors.New("scan takes one IMAGE, or --sbom FILE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runScan(cmd, e, &f, args) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.db.path, "db", "", "the vulnerability database (default $LADING_DB, else "+vulndb.DefaultPath()+")")
	fl.StringVar(&f.sbom, "sbom", "", "scan the packages of a CycloneDX or SPDX JSON file instead of an image")
	fl.StringVarP(&f.format, "format", "f", "table", "output format: table, json, sarif, cyclonedx, spdx, template")
	fl.StringVarP(&f.output, "output", "o", "", "write the report to this file (default: standard output)")
	fl.StringVar(&f.template, "template", "", "Go template for --format template (text, or @FILE)")
	fl.StringSliceVarP(&f.severity, "severity", "s", nil, "only these severities (comma-separated: UNKNOWN,LOW,MEDIUM,HIGH,CRITICAL)")
	fl.BoolVar(&f.ignoreUnfixed, "ignore-unfixed", false, "drop findings that have no fixed version")
	fl.StringSliceVar(&f.pkgTypes, "pkg-types", nil, "only these package types: os, library")
	fl.StringVar(&f.ignoreFile, "ignorefile", ".ladingignore", "ignore file (used when present)")
	fl.StringArrayVar(&f.vex, "vex", nil, "OpenVEX or CycloneDX VEX document (repeatable)")
	fl.IntVar(&f.exitCode, "exit-code", 0, "exit with this code when findings remain after filtering (not 1 or 2)")
	fl.StringVar(&f.groupBy, "group-by", "target", "table grouping: target or layer")
	fl.BoolVar(&f.showSuppressed, "show-suppressed", false, "list the findings the ignore file and VEX suppressed")
	fl.IntVar(&f.baseLayers, "base-layers", -1, "how many bottom layers are the base image's (default: inferred from the history)")
	fl.BoolVar(&f.noCache, "no-cache", false, "analyze every layer again instead of using cached results")
	fl.BoolVar(&f.untriaged, "include-untriaged", false, "also list findings under investigation (Ubuntu needs-triage); they count in no total or exit code")
	fl.IntVar(&f.exitUnknownOS, "exit-on-unknown-os", 0, "exit with this code when the database has no advisories for the image's OS release (not 1 or 2)")
	f.mode.register(fl)
	f.imageFlags.register(fl)
	return cmd
}

func runScan(cmd *cobra.Command, e *env, f *scanFlags, args []string) error {
	for _, c := range []struct {
		flag string
		code int
	}{{"--exit-code", f.exitCode}, {"--exit-on-unknown-os", f.exitUnknownOS}} {
		if c.code == exitError || c.code == exitUsage || c.code < 0 || c.code > 125 {
			return usageError{errorf("%s %d: 1 and 2 are lading's codes for errors and usage errors; pick another (3-125)", c.flag, c.code)}
		}
	}
	switch f.format {
	case "table", "json", "sarif", "cyclonedx", "spdx", "template":
	default:
		return usageError{errorf("--format %q: want table, json, sarif, cyclonedx, spdx or template", f.format)}
	}
	if f.format == "template" && f.template == "" {
		return usageError{errorf("--format template needs --template")}
	}
	if f.groupBy != "target" && f.groupBy != "layer" {
		return usageError{errorf("--group-by %q: want target or layer", f.groupBy)}
	}
	filter, err := f.filter()
	if err != nil {
		return err
	}

	dbPath := f.db.file()
	db, err := vulndb.Open(dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	meta := db.Metadata()
	if f.format == "table" || f.output != "" {
		var srcs []string
		for _, s := range meta.Sources {
			srcs = append(srcs, s.Name)
		}
		fmt.Fprintf(e.stderr, "Using the vulnerability database %s (built %s from %s); scans never use the network.\n",
			dbPath, meta.BuiltAt.Format("2006-01-02 15:04 MST"), strings.Join(srcs, ", "))
	}
	sc := scan.New(db, dbPath, e.log, scan.WithUntriaged(f.untriaged))

	var (
		rep *report.Report
		inv *analyze.Inventory
		img sbom.Image
	)
	if f.sbom != "" {
		rep, inv, err = scanSBOM(cmd, sc, f.sbom)
		img.Name = f.sbom
	} else {
		rep, inv, img, err = scanImage(cmd, e, sc, f, args[0])
	}
	if err != nil {
		return err
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(e.stderr, "warning: %s\n", w)
	}
	if rep.Unscanned() {
		fmt.Fprintf(e.stderr, "warning: %s\n", rep.Metadata.OS.Unscanned.Message)
	}
	suppressed := filter.Apply(rep)
	if filter.Ignore != nil {
		for _, r := range filter.Ignore.Expired(filter.Now) {
			fmt.Fprintf(e.stderr, "%s line %d: rule for %s expired on %s and no longer applies\n", filter.Ignore.Name, r.Line, r.ID, r.Expires.Format("2006-01-02"))
		}
	}
	if err := writeReport(e, f, rep, inv, img, suppressed); err != nil {
		return err
	}
	if f.exitUnknownOS != 0 && rep.Unscanned() {
		return &exitCodeError{code: f.exitUnknownOS}
	}
	if f.exitCode != 0 && rep.Total() > 0 {
		return &exitCodeError{code: f.exitCode}
	}
	return nil
}

// filter builds the report filter from the flags.
func (f *scanFlags) filter() (report.Filter, error) {
	var out report.Filter
	sev, err := report.ParseSeverities(f.severity)
	if err != nil {
		return out, usageError{errdefs.InvalidArgument(err)}
	}
	out.Severities = sev
	out.IgnoreUnfixed = f.ignoreUnfixed
	for _, t := range f.pkgTypes {
		for _, s := range strings.Split(t, ",") {
			switch s = strings.TrimSpace(s); s {
			case "os", "library":
				out.PkgTypes = append(out.PkgTypes, s)
			case "":
			default:
				return out, usageError{errorf("--pkg-types %q: want os or library", s)}
			}
		}
	}
	if f.ignoreFile != "" {
		file, err := os.Open(f.ignoreFile)
		switch {
		case err == nil:
			ig, perr := report.ParseIgnoreFile(file, f.ignoreFile)
			file.Close()
			if perr != nil {
				return out, errdefs.InvalidArgument(perr)
			}
			out.Ignore = ig
		case errors.Is(err, fs.ErrNotExist) && !f.explicitIgnoreFile():
		default:
			return out, err
		}
	}
	for _, v := range f.vex {
		file, err := os.Open(v)
		if err != nil {
			return out, err
		}
		x, err := report.ParseVEX(file, v)
		file.Close()
		if err != nil {
			return out, errdefs.InvalidArgument(err)
		}
		out.VEX = append(out.VEX, x)
	}
	return out, nil
}

// explicitIgnoreFile reports whether the user named an ignore file (which
// must then exist) rather than relying on the default.
func (f *scanFlags) explicitIgnoreFile() bool { return f.ignoreFile != ".ladingignore" }

func scanImage(cmd *cobra.Command, e *env, sc *scan.Scanner, f *scanFlags, arg string) (*report.Report, *analyze.Inventory, sbom.Image, error) {
	ctx := cmd.Context()
	fail := func(err error) (*report.Report, *analyze.Inventory, sbom.Image, error) {
		return nil, nil, sbom.Image{}, err
	}
	ref, err := f.mode.ref(e, arg)
	if err != nil {
		return fail(err)
	}
	ss, err := e.begin(&f.imageFlags, false)
	if err != nil {
		return fail(err)
	}
	defer ss.Close()
	src, img, err := ss.openImage(ctx, ref)
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	opts := []analyze.Option{analyze.WithLogger(e.log), analyze.WithName(arg), f.mode.option()}
	if !f.noCache && cacheable(ref) {
		c, err := cache.Open(filepath.Join(e.root, "cache", "layers"))
		if err != nil {
			return fail(err)
		}
		opts = append(opts, analyze.WithCache(c))
	}
	info := scan.ImageInfo{Name: arg, BaseLayers: f.baseLayers}
	for _, n := range src.Names {
		info.RepoTags = append(info.RepoTags, image.FamiliarName(n))
	}
	if cf, err := img.ConfigFile(); err == nil {
		info.Platform = cf.OS + "/" + cf.Architecture
		if cf.Variant != "" {
			info.Platform += "/" + cf.Variant
		}
	}
	rep, inv, err := sc.Image(ctx, img, info, opts...)
	if err != nil {
		return fail(err)
	}
	return rep, inv, sbom.Image{Name: arg, Digest: rep.Metadata.Digest, ID: rep.Metadata.ImageID, Platform: info.Platform}, nil
}

func scanSBOM(cmd *cobra.Command, sc *scan.Scanner, path string) (*report.Report, *analyze.Inventory, error) {
	file, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, errdefs.NotFound(err)
		}
		return nil, nil, err
	}
	defer file.Close()
	inv, err := scan.FromSBOM(file, path)
	if err != nil {
		return nil, nil, err
	}
	rep, err := sc.Inventory(cmd.Context(), inv, "sbom", scan.ImageInfo{Name: path})
	return rep, inv, err
}

// writeReport writes rep in the chosen format to stdout or --output.
func writeReport(e *env, f *scanFlags, rep *report.Report, inv *analyze.Inventory, img sbom.Image, suppressed []report.Suppression) error {
	opts := sbom.Options{ToolName: "lading", ToolVersion: ladingVersion()}
	write := func(w io.Writer) error {
		switch f.format {
		case "json":
			return report.WriteJSON(w, rep)
		case "sarif":
			return report.WriteSARIF(w, rep, ladingVersion())
		case "cyclonedx":
			return sbom.WriteCycloneDX(w, img, inv, rep, opts)
		case "spdx":
			return sbom.WriteSPDX(w, img, inv, rep, opts)
		case "template":
			tpl, err := report.ParseTemplate(f.template)
			if err != nil {
				return usageError{errdefs.InvalidArgument(err)}
			}
			return tpl.Execute(w, rep)
		}
		o := report.TableOptions{GroupByLayer: f.groupBy == "layer", Color: f.output == "" && isTerminal(e.stdout)}
		if f.showSuppressed {
			o.Suppressed = suppressed
		}
		return report.WriteTable(w, rep, o)
	}
	if f.output == "" {
		return write(e.stdout)
	}
	return image.WriteFileAtomic(f.output, write)
}

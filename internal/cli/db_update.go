package cli

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/progress"
	"github.com/lading-dev/lading/internal/vulndb/update"
)

func newDBUpdateCommand(e *env, f *dbFlags) *cobra.Command {
	var (
		config      string
		repository  string
		insecure    bool
		printConfig bool
	)
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Download the public feeds and build the vulnerability database",
		Long: `Download the public advisory feeds and build the vulnerability database: osv.dev's
per-ecosystem zips (Go, PyPI, npm, Maven, crates.io, RubyGems, Packagist, NuGet,
Hex, Pub, AlmaLinux, Rocky Linux, Ubuntu, Wolfi, Chainguard), Alpine's secdb
and the Debian security tracker's JSON. Downloads are kept beside the database
(DIR/feeds/) with the servers' ETags, so the next update fetches only what
changed; a feed whose download fails is built from its previous download.

When a repository is configured (--repository, or "repository:" in the
configuration file), update pulls a prebuilt database from that registry
instead, as lading db pull does.

The configuration file (--config, default $XDG_CONFIG_HOME/lading/db.yaml when
it exists) can replace the feed list and name the repository; print the
default one with --print-config:

  repository: registry.example.com/security/lading-db:1
  feeds:
    - name: osv-Go
      url: https://osv-vulnerabilities.storage.googleapis.com/Go/all.zip
      format: osv          # optional`,
		Example: `  lading db update
  lading db update --print-config > ~/.config/lading/db.yaml
  lading db update --repository registry.example.com/security/lading-db:1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := update.DefaultConfig()
			path := config
			if path == "" {
				if p := update.DefaultConfigPath(); p != "" {
					if _, err := os.Stat(p); err == nil {
						path = p
					}
				}
			}
			if path != "" {
				c, err := update.LoadConfig(path)
				if err != nil {
					if errors.Is(err, errdefs.ErrNotFound) {
						return usageError{errdefs.InvalidArgument(err)}
					}
					return err
				}
				cfg = c
			}
			if repository != "" {
				cfg.Repository = repository
			}
			cfg.Insecure = cfg.Insecure || insecure
			if printConfig {
				b, err := cfg.Marshal()
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(b)
				return err
			}
			db := f.file()
			p := e.reporter()
			r := &updateReporter{p: p, tasks: map[string]*byteTask{}}
			client := &http.Client{Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				TLSHandshakeTimeout:   30 * time.Second,
				ResponseHeaderTimeout: 2 * time.Minute,
				IdleConnTimeout:       90 * time.Second,
			}}
			meta, err := update.Update(cmd.Context(), e.log, cfg, db,
				update.WithProgress(r.event), update.WithHTTPClient(client), update.WithBuiltBy(builtBy()),
				update.WithOCIOptions(ociOptions(cfg.Insecure)...))
			r.finish(err)
			p.Close()
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, summary(db, meta))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&config, "config", "", "the update configuration file (default $XDG_CONFIG_HOME/lading/db.yaml, if it exists)")
	fl.StringVar(&repository, "repository", "", "pull a prebuilt database from this registry reference instead of building")
	fl.BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS for the repository's registry")
	fl.BoolVar(&printConfig, "print-config", false, "print the configuration in effect as YAML and exit")
	return cmd
}

// updateReporter turns update events into progress tasks.
type updateReporter struct {
	p     progress.Reporter
	tasks map[string]*byteTask
	build progress.Task
}

func (r *updateReporter) event(ev update.Event) {
	switch ev.Phase {
	case "download", "pull":
		t := r.tasks[ev.Feed]
		if t == nil {
			t = &byteTask{p: r.p, id: ev.Feed, op: ev.Phase}
			r.tasks[ev.Feed] = t
		}
		t.update(ev.Done, ev.Total)
		if ev.Phase == "download" && ev.Total >= 0 && ev.Done >= ev.Total {
			t.done(nil)
			delete(r.tasks, ev.Feed)
		}
	case "cached":
		r.p.Task(ev.Feed, "download", -1).Skip("not modified")
	case "build":
		r.closeDownloads(nil)
		if r.build == nil {
			r.build = r.p.Task("vuln.db", "build", -1)
		}
	case "done":
		r.finish(nil)
	}
}

func (r *updateReporter) closeDownloads(err error) {
	for k, t := range r.tasks {
		t.done(err)
		delete(r.tasks, k)
	}
}

func (r *updateReporter) finish(err error) {
	r.closeDownloads(err)
	if r.build != nil {
		r.build.Done(err)
		r.build = nil
	}
}

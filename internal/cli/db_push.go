package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lading-dev/lading/internal/vulndb/oci"
)

func newDBPushCommand(e *env, f *dbFlags) *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "push REF",
		Short: "Push the vulnerability database to a registry as an OCI artifact",
		Long: `Push the vulnerability database to a registry as an OCI artifact (artifact type
application/vnd.lading.vulndb.v1; the metadata as config; the file as one
zstd-compressed layer), so that machines without access to the feeds can
lading db pull it. Credentials come from lading login (docker's config).`,
		Example: `  lading db push registry.example.com/security/lading-db:1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := registryRef(args[0], insecure)
			if err != nil {
				return err
			}
			p := e.reporter()
			t := &byteTask{p: p, id: ref.Context().RepositoryStr(), op: "push"}
			d, err := oci.Push(cmd.Context(), f.file(), ref, append(ociOptions(insecure), oci.WithProgress(t.update))...)
			t.done(err)
			p.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: %s\n", ref, d)
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	return cmd
}

func newDBPullCommand(e *env, f *dbFlags) *cobra.Command {
	var (
		insecure bool
		out      string
	)
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull the vulnerability database from a registry",
		Long: `Pull a vulnerability database that lading db push put in a registry. The
schema version is checked before the download (a database this lading cannot
read is refused, saying what to do); the download is verified against its
digest and size, and the file is opened as a database before it replaces the
current one (default: --db).`,
		Example: `  lading db pull registry.example.com/security/lading-db:1`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := registryRef(args[0], insecure)
			if err != nil {
				return err
			}
			if out == "" {
				out = f.file()
			}
			p := e.reporter()
			t := &byteTask{p: p, id: ref.Context().RepositoryStr(), op: "pull"}
			meta, err := oci.Pull(cmd.Context(), ref, out, append(ociOptions(insecure), oci.WithProgress(t.update))...)
			t.done(err)
			p.Close()
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, summary(out, meta))
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP and unverified TLS")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the database file to write (default: --db)")
	return cmd
}

package postgres

import (
	"context"
	"testing"

	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/meta/metatest"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
)

func TestConformance(t *testing.T) {
	srv := pgtest.Start(t)
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := Open(context.Background(), srv.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Two processes starting on one empty database both create the schema.
func TestConcurrentSchema(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(context.Background(), url)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	if _, err := Open(context.Background(), "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"); err == nil {
		t.Error("Open of an unreachable server succeeded")
	}
}

package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/endpoint"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the replication tables.
var Migrations = []sqldb.Migration{{Owner: "replication", Name: "registries and replication policies", SQL: []string{
	`CREATE TABLE registries (
		id {{id}},
		name {{text}} NOT NULL UNIQUE,
		description {{text}} NOT NULL,
		type {{text}} NOT NULL,
		url {{text}} NOT NULL,
		credential_type {{text}} NOT NULL,
		access_key {{text}} NOT NULL,
		access_secret {{text}} NOT NULL,
		insecure {{bool}} NOT NULL,
		ca_certificate {{text}} NOT NULL,
		status {{text}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE replication_policies (
		id {{id}},
		name {{text}} NOT NULL UNIQUE,
		description {{text}} NOT NULL,
		creator {{text}} NOT NULL,
		src_registry_id {{int}} NOT NULL,
		dest_registry_id {{int}} NOT NULL,
		dest_namespace {{text}} NOT NULL,
		dest_namespace_replace_count {{int}} NOT NULL,
		filters {{text}} NOT NULL,
		trigger {{text}} NOT NULL,
		replicate_deletion {{bool}} NOT NULL,
		override {{bool}} NOT NULL,
		enabled {{bool}} NOT NULL,
		speed {{int}} NOT NULL,
		copy_by_chunk {{bool}} NOT NULL,
		single_active {{bool}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE INDEX replication_policies_src ON replication_policies (src_registry_id)`,
	`CREATE INDEX replication_policies_dest ON replication_policies (dest_registry_id)`,
}}}

// Registry health, as Harbor names it.
const (
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
)

// Masked stands for a stored secret in answers.
const Masked = "*****"

// Registry is a registry endpoint.
type Registry struct {
	ID          int64
	Name        string
	Description string
	endpoint.Endpoint
	Status  string
	Created time.Time
	Updated time.Time
}

// masked returns r with its secret masked.
func (r Registry) masked() Registry {
	if r.Credential.AccessSecret != "" {
		r.Credential.AccessSecret = Masked
	}
	return r
}

const registryCols = `id, name, description, type, url, credential_type, access_key, access_secret, insecure, ca_certificate, status, created, updated`

// scanRegistry reads a row; the secret stays sealed.
func scanRegistry(row sqldb.Row) (Registry, error) {
	var r Registry
	var created, updated int64
	err := row.Scan(&r.ID, &r.Name, &r.Description, &r.Type, &r.URL, &r.Credential.Type, &r.Credential.AccessKey, &r.Credential.AccessSecret,
		&r.Insecure, &r.CACertificate, &r.Status, &created, &updated)
	r.Created, r.Updated = sqldb.Time(created), sqldb.Time(updated)
	return r, err
}

func purpose(id int64) string { return "registry:" + strconv.FormatInt(id, 10) }

// registry returns a registry with its secret opened.
func (s *Service) registry(ctx context.Context, id int64) (Registry, error) {
	r, err := scanRegistry(s.db.QueryRow(ctx, `SELECT `+registryCols+` FROM registries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Registry{}, errdefs.NotFound(fmt.Errorf("registry %d not found", id))
	}
	if err != nil {
		return Registry{}, s.db.Wrap("registry", err)
	}
	if r.Credential.AccessSecret, err = s.keys.Open(purpose(r.ID), r.Credential.AccessSecret); err != nil {
		return Registry{}, fmt.Errorf("registry %d: %w", id, err)
	}
	return r, nil
}

// Endpoint returns the endpoint of registry id, its credential opened,
// for lading's own use (proxy caches).
func (s *Service) Endpoint(ctx context.Context, id int64) (Registry, error) {
	return s.registry(ctx, id)
}

// RegistryFields are the keys a registry listing may filter and sort by.
var RegistryFields = query.Fields{
	"id":            {Column: "id", Kind: query.Int},
	"name":          {Column: "name"},
	"type":          {Column: "type"},
	"url":           {Column: "url"},
	"status":        {Column: "status"},
	"creation_time": {Column: "created", Kind: query.Time},
	"update_time":   {Column: "updated", Kind: query.Time},
}

// Registries lists the registries (secrets masked).
func (s *Service) Registries(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]Registry, int64, error) {
	if err := s.access.Require(ctx, who, access.List, access.Registry, 0); err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), RegistryFields, "id", "id")
	if err != nil {
		return nil, 0, err
	}
	list, total, err := sqldb.ListPage(ctx, s.db, "registries", registryCols, c.WhereSQL(), c.Args, c.OrderBy+page.LimitSQL(), scanRegistry)
	for i := range list {
		list[i] = list[i].masked()
	}
	return list, total, err
}

// Registry returns a registry (secret masked).
func (s *Service) Registry(ctx context.Context, who access.Subject, id int64) (Registry, error) {
	if err := s.access.Require(ctx, who, access.Read, access.Registry, 0); err != nil {
		return Registry{}, err
	}
	r, err := s.registry(ctx, id)
	return r.masked(), err
}

// checkRegistry validates a registry as Harbor does: a name (at most 64
// bytes), a valid endpoint (package endpoint and outbound), and a ping
// that succeeds (Harbor refuses unhealthy registries).
func (s *Service) checkRegistry(ctx context.Context, r *Registry) error {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		return errdefs.InvalidArgument(errors.New("name cannot be empty"))
	}
	if len(r.Name) > 64 {
		return errdefs.InvalidArgument(errors.New("the max length of name is 64"))
	}
	if len(r.Description) > 1024 {
		return errdefs.InvalidArgument(errors.New("the max length of description is 1024"))
	}
	if err := r.Endpoint.Check(s.opt.Outbound); err != nil {
		return err
	}
	if err := s.ping(ctx, r.Endpoint); err != nil {
		return err
	}
	r.Status = Healthy
	return nil
}

// ping checks an endpoint; a failure is a bad request naming the reason.
func (s *Service) ping(ctx context.Context, e endpoint.Endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, s.opt.Timeout)
	defer cancel()
	c, err := s.client(e, true)
	if err != nil {
		return err
	}
	if err := c.Ping(ctx); err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("the registry is unhealthy: %v", err))
	}
	return nil
}

// CreateRegistry adds a registry and returns its id.
func (s *Service) CreateRegistry(ctx context.Context, who access.Subject, r Registry) (int64, error) {
	if err := s.access.Require(ctx, who, access.Create, access.Registry, 0); err != nil {
		return 0, err
	}
	if err := s.checkRegistry(ctx, &r); err != nil {
		return 0, err
	}
	now := sqldb.Nanos(s.db.Now())
	var id int64
	err := s.db.Tx(ctx, "create registry", func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO registries (name, description, type, url, credential_type, access_key, access_secret, insecure, ca_certificate, status, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?) RETURNING id`, r.Name, r.Description, r.Type, r.URL, r.Credential.Type, r.Credential.AccessKey,
			r.Insecure, r.CACertificate, r.Status, now, now).Scan(&id)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("a registry named %q already exists", r.Name))
		}
		if err != nil {
			return err
		}
		// The secret is sealed for this row's id.
		sealed, err := s.keys.Seal(purpose(id), r.Credential.AccessSecret)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE registries SET access_secret = ? WHERE id = ?`, sealed, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "create", ResourceType: "registry", Resource: r.Name,
			Description: fmt.Sprintf("create registry %s (%s %s)", r.Name, r.Type, r.URL)})
	})
	return id, err
}

// RegistryUpdate changes some of a registry's settings (nil: unchanged).
type RegistryUpdate struct {
	Name, Description, URL                  *string
	CredentialType, AccessKey, AccessSecret *string
	Insecure                                *bool
	CACertificate                           *string
}

// UpdateRegistry changes a registry. As Harbor does, a new URL without a
// new secret forgets the stored secret: credentials meant for one
// address are never sent to another.
func (s *Service) UpdateRegistry(ctx context.Context, who access.Subject, id int64, u RegistryUpdate) error {
	if err := s.access.Require(ctx, who, access.Update, access.Registry, 0); err != nil {
		return err
	}
	r, err := s.registry(ctx, id)
	if err != nil {
		return err
	}
	oldURL := r.URL
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&r.Name, u.Name)
	set(&r.Description, u.Description)
	set(&r.URL, u.URL)
	set(&r.Credential.Type, u.CredentialType)
	set(&r.Credential.AccessKey, u.AccessKey)
	set(&r.Credential.AccessSecret, u.AccessSecret)
	set(&r.CACertificate, u.CACertificate)
	if u.Insecure != nil {
		r.Insecure = *u.Insecure
	}
	if u.URL != nil && u.AccessSecret == nil && strings.TrimSuffix(*u.URL, "/") != oldURL {
		r.Credential.AccessSecret = ""
	}
	if err := s.checkRegistry(ctx, &r); err != nil {
		return err
	}
	sealed, err := s.keys.Seal(purpose(id), r.Credential.AccessSecret)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "update registry", func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE registries SET name = ?, description = ?, url = ?, credential_type = ?, access_key = ?, access_secret = ?, insecure = ?, ca_certificate = ?, status = ?, updated = ? WHERE id = ?`,
			r.Name, r.Description, r.URL, r.Credential.Type, r.Credential.AccessKey, sealed, r.Insecure, r.CACertificate, r.Status, sqldb.Nanos(s.db.Now()), id)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("a registry named %q already exists", r.Name))
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "registry", Resource: r.Name,
			Description: fmt.Sprintf("update registry %s (%s %s)", r.Name, r.Type, r.URL)})
	})
}

// DeleteRegistry removes a registry no policy and no proxy-cache project
// uses (412 otherwise, as Harbor).
func (s *Service) DeleteRegistry(ctx context.Context, who access.Subject, id int64) error {
	if err := s.access.Require(ctx, who, access.Delete, access.Registry, 0); err != nil {
		return err
	}
	r, err := s.registry(ctx, id)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "delete registry", func(tx *sqldb.Tx) error {
		// Lock the row first: a proxy project created meanwhile checks it
		// in its own transaction (RegistryExists).
		var x int64
		if err := tx.QueryRow(ctx, `SELECT id FROM registries WHERE id = ?`+tx.Dialect().ForUpdate, id).Scan(&x); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errdefs.NotFound(fmt.Errorf("registry %d not found", id))
			}
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM replication_policies WHERE src_registry_id = ? OR dest_registry_id = ?`, id, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errdefs.FailedPrecondition(fmt.Errorf("the registry %d is referenced by replication policies, cannot delete it", id))
		}
		if n, err = s.projects.CountByRegistry(ctx, tx, id); err != nil {
			return err
		}
		if n > 0 {
			return errdefs.FailedPrecondition(fmt.Errorf("the registry %d is referenced by proxy cache project, cannot delete it", id))
		}
		if _, err := tx.Exec(ctx, `DELETE FROM registries WHERE id = ?`, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "delete", ResourceType: "registry", Resource: r.Name,
			Description: fmt.Sprintf("delete registry %s", r.Name)})
	})
}

// RegistryExists checks, in a transaction creating a proxy-cache
// project, that registry id exists and may be a proxy cache's upstream;
// the row stays locked until tx ends.
func (s *Service) RegistryExists(ctx context.Context, tx *sqldb.Tx, id int64) error {
	var typ string
	err := tx.QueryRow(ctx, `SELECT type FROM registries WHERE id = ?`+tx.Dialect().ForShare, id).Scan(&typ)
	if errors.Is(err, sql.ErrNoRows) {
		return errdefs.InvalidArgument(fmt.Errorf("registry %d not found", id))
	}
	return err
}

// RegistryPing is what a ping names: a saved registry (ID; its URL and
// TLS settings are then authoritative) or an endpoint to try.
type RegistryPing struct {
	ID                                      *int64
	Type, URL                               *string
	CredentialType, AccessKey, AccessSecret *string
	Insecure                                *bool
	CACertificate                           *string
}

// PingRegistry checks a registry: nil when it answers and accepts the
// credentials, else a bad request saying why (Harbor's "the registry is
// unhealthy").
func (s *Service) PingRegistry(ctx context.Context, who access.Subject, p RegistryPing) error {
	if err := s.access.Require(ctx, who, access.Read, access.Registry, 0); err != nil {
		return err
	}
	var e endpoint.Endpoint
	if p.ID != nil {
		r, err := s.registry(ctx, *p.ID)
		if err != nil {
			return err
		}
		e = r.Endpoint
	} else {
		if p.URL != nil {
			e.URL = *p.URL
		}
		if p.Insecure != nil {
			e.Insecure = *p.Insecure
		}
		if p.CACertificate != nil {
			e.CACertificate = *p.CACertificate
		}
	}
	if p.Type != nil {
		e.Type = *p.Type
	}
	for dst, src := range map[*string]*string{&e.Credential.Type: p.CredentialType, &e.Credential.AccessKey: p.AccessKey, &e.Credential.AccessSecret: p.AccessSecret} {
		if src != nil {
			*dst = *src
		}
	}
	if e.Type == "" || e.URL == "" && e.Type != endpoint.TypeDockerHub {
		return errdefs.InvalidArgument(errors.New("type or url cannot be empty"))
	}
	if err := e.Check(s.opt.Outbound); err != nil {
		return err
	}
	return s.ping(ctx, e)
}

// RegistryInfo returns what a registry supports as a replication source
// (id 0: lading itself, which alone supports event-based triggers).
func (s *Service) RegistryInfo(ctx context.Context, who access.Subject, id int64) (endpoint.Info, error) {
	if err := s.access.Require(ctx, who, access.Read, access.Registry, 0); err != nil {
		return endpoint.Info{}, err
	}
	if id == 0 {
		in := endpoint.InfoOf(endpoint.TypeHarbor)
		in.Description = "lading itself"
		in.Triggers = append(in.Triggers, endpoint.TriggerEvent)
		return in, nil
	}
	r, err := s.registry(ctx, id)
	if err != nil {
		return endpoint.Info{}, err
	}
	return endpoint.InfoOf(r.Type), nil
}

// Adapters lists the registry types (Harbor's adapters).
func (s *Service) Adapters(ctx context.Context, who access.Subject) ([]string, error) {
	if err := s.access.Require(ctx, who, access.List, access.ReplicationAdapter, 0); err != nil {
		return nil, err
	}
	return append([]string(nil), endpoint.Types...), nil
}

// AdapterInfos returns how each type asks for its endpoint.
func (s *Service) AdapterInfos(ctx context.Context, who access.Subject) (map[string]endpoint.Pattern, error) {
	if err := s.access.Require(ctx, who, access.List, access.ReplicationAdapter, 0); err != nil {
		return nil, err
	}
	out := map[string]endpoint.Pattern{}
	for _, t := range endpoint.Types {
		out[t] = endpoint.PatternOf(t)
	}
	return out, nil
}

// checkHealth pings every registry and records its status.
func (s *Service) checkHealth(ctx context.Context) {
	rows, err := s.db.Query(ctx, `SELECT id, status FROM registries ORDER BY id`)
	if err != nil {
		return
	}
	type st struct {
		id     int64
		status string
	}
	var list []st
	for rows.Next() {
		var x st
		if rows.Scan(&x.id, &x.status) == nil {
			list = append(list, x)
		}
	}
	rows.Close()
	for _, x := range list {
		r, err := s.registry(ctx, x.id)
		if err != nil {
			continue
		}
		status := Healthy
		if err := s.ping(ctx, r.Endpoint); err != nil {
			status = Unhealthy
			s.log.Warn("a registry endpoint is unhealthy", "registry", r.Name, "url", r.URL, "error", err.Error())
		}
		if status != x.status {
			s.db.Exec(ctx, `UPDATE registries SET status = ? WHERE id = ?`, status, x.id)
		}
	}
}

// ResealSecrets seals again, with the keyring's sealing key, the secrets
// that an older key sealed (a key file configured after secrets were
// stored, or a rotation). It returns how many it moved.
func (s *Service) ResealSecrets(ctx context.Context) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT id, access_secret FROM registries WHERE access_secret <> ''`)
	if err != nil {
		return 0, s.db.Wrap("registries", err)
	}
	stale := map[int64]string{}
	for rows.Next() {
		var id int64
		var sealed string
		if err := rows.Scan(&id, &sealed); err != nil {
			rows.Close()
			return 0, err
		}
		if s.keys.Stale(sealed) {
			stale[id] = sealed
		}
	}
	rows.Close()
	n := 0
	for id, sealed := range stale {
		fresh, err := s.keys.Reseal(purpose(id), sealed)
		if err != nil {
			return n, fmt.Errorf("registry %d: %w", id, err)
		}
		if _, err := s.db.Exec(ctx, `UPDATE registries SET access_secret = ? WHERE id = ? AND access_secret = ?`, fresh, id, sealed); err != nil {
			return n, s.db.Wrap("reseal", err)
		}
		n++
	}
	return n, nil
}

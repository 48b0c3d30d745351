// Package audit is the audit log: who created, changed or deleted what,
// who pushed, pulled or deleted which artifact, who logged in or failed
// to, from which address, in which request, when.
//
// Records are written in the same database transaction as the change they
// describe (Record takes the change's sqldb.Tx), so a crash loses neither
// or both. After the commit, and only then, each record is also forwarded
// to a syslog collector when Harbor's audit_log_forward_endpoint is set
// (and, with skip_audit_log_database, only forwarded). Event types listed
// in disabled_audit_log_event_types ("pull_artifact", "login_user"...) are
// not recorded.
//
// The table, owned by this package:
//
//	audit_log
//	  id, project_id (0: not in a project), operation (create, update,
//	  delete, pull, login, logout), resource_type (artifact, project,
//	  user, robot, member, configuration, repository, tag, quota),
//	  resource, description, success, username, address, request_id,
//	  op_time (unix nanoseconds)
package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/actor"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/syslog"
)

// Migrations create the audit log's table.
var Migrations = []sqldb.Migration{{Owner: "audit", Name: "audit log", SQL: []string{
	`CREATE TABLE audit_log (
		id {{id}},
		project_id {{int}} NOT NULL DEFAULT 0,
		operation {{text}} NOT NULL,
		resource_type {{text}} NOT NULL,
		resource {{text}} NOT NULL,
		description {{text}} NOT NULL,
		success {{bool}} NOT NULL,
		username {{text}} NOT NULL,
		address {{text}} NOT NULL,
		request_id {{text}} NOT NULL,
		op_time {{int}} NOT NULL)`,
	`CREATE INDEX audit_log_time ON audit_log (op_time)`,
	`CREATE INDEX audit_log_project ON audit_log (project_id, op_time)`,
}}}

// Event is one audited action.
type Event struct {
	ProjectID    int64
	Operation    string // create, update, delete, pull, login, logout
	ResourceType string
	Resource     string
	Description  string
	// Failed marks an action that did not succeed (a failed login).
	Failed bool
	// Username, Address and RequestID default to the context's actor.
	Username  string
	Address   string
	RequestID string
	// Time defaults to now.
	Time time.Time
}

// Type is the event's type as Harbor names it: operation_resourcetype.
func (e Event) Type() string { return e.Operation + "_" + e.ResourceType }

// Entry is a recorded event.
type Entry struct {
	ID int64
	Event
}

// Settings are the audit log's settings (from the configuration).
type Settings struct {
	ForwardEndpoint string
	SkipDatabase    bool
	Disabled        []string
}

// Log is the audit log.
type Log struct {
	db       *sqldb.DB
	access   *access.Checker
	settings func(context.Context) (Settings, error)
	log      *slog.Logger

	mu  sync.Mutex
	fwd *syslog.Writer
}

// New returns the audit log over db; settings is asked for the current
// settings on each record.
func New(db *sqldb.DB, checker *access.Checker, settings func(context.Context) (Settings, error), log *slog.Logger) *Log {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Log{db: db, access: checker, settings: settings, log: log}
}

// Close stops the forwarder, sending what it holds.
func (l *Log) Close() {
	l.mu.Lock()
	fwd := l.fwd
	l.fwd = nil
	l.mu.Unlock()
	if fwd != nil {
		fwd.Close()
	}
}

// complete fills the event's defaults from ctx.
func (l *Log) complete(ctx context.Context, e Event) Event {
	a := actor.From(ctx)
	if e.Username == "" {
		e.Username = a.Name
		if e.Username == "" {
			e.Username = "anonymous"
		}
	}
	if e.Address == "" {
		e.Address = a.Address
	}
	if e.RequestID == "" {
		e.RequestID = a.RequestID
	}
	if e.Time.IsZero() {
		e.Time = l.db.Now()
	}
	if e.Description == "" {
		e.Description = e.Operation + " " + e.ResourceType + " " + e.Resource
	}
	return e
}

// Record writes e in tx, the transaction of the change it describes, and
// forwards it once tx commits.
func (l *Log) Record(ctx context.Context, tx *sqldb.Tx, e Event) error {
	st, err := l.settings(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(st.Disabled, e.Type()) {
		return nil
	}
	e = l.complete(ctx, e)
	if !st.SkipDatabase {
		_, err := tx.Exec(ctx, `INSERT INTO audit_log (project_id, operation, resource_type, resource, description, success, username, address, request_id, op_time)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.ProjectID, e.Operation, e.ResourceType, e.Resource, e.Description, !e.Failed, e.Username, e.Address, e.RequestID, sqldb.Nanos(e.Time))
		if err != nil {
			return err
		}
	}
	if st.ForwardEndpoint != "" {
		tx.AfterCommit(func() { l.forward(st.ForwardEndpoint, e) })
	}
	return nil
}

// RecordNow records e in a transaction of its own (a failed login, a
// pull: events that change nothing else).
func (l *Log) RecordNow(ctx context.Context, e Event) error {
	return l.db.Tx(ctx, "audit "+e.Type(), func(tx *sqldb.Tx) error { return l.Record(ctx, tx, e) })
}

// RecordBatch records several events in one transaction (pulls, which
// come in bursts).
func (l *Log) RecordBatch(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	return l.db.Tx(ctx, "audit batch", func(tx *sqldb.Tx) error {
		for _, e := range events {
			if err := l.Record(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// Enabled reports whether events of a type are recorded.
func (l *Log) Enabled(ctx context.Context, eventType string) bool {
	st, err := l.settings(ctx)
	return err == nil && !slices.Contains(st.Disabled, eventType)
}

// forward sends e to the collector at addr, (re)connecting when the
// endpoint changed.
func (l *Log) forward(addr string, e Event) {
	l.mu.Lock()
	if l.fwd == nil || l.fwd.Addr() != addr {
		if l.fwd != nil {
			go l.fwd.Close()
		}
		l.fwd = syslog.Dial(addr, "lading", l.log)
	}
	fwd := l.fwd
	l.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{
		"project_id":            e.ProjectID,
		"operation":             e.Operation,
		"resource_type":         e.ResourceType,
		"resource":              e.Resource,
		"operation_description": e.Description,
		"operation_result":      !e.Failed,
		"username":              e.Username,
		"address":               e.Address,
		"request_id":            e.RequestID,
		"op_time":               e.Time.UTC().Format(time.RFC3339Nano),
	})
	fwd.Send(syslog.FacilityAudit, syslog.SeverityInfo, e.Time, "audit", string(msg))
}

// Fields are the keys a listing may filter and sort by (q, sort).
var Fields = query.Fields{
	"id":            {Column: "id", Kind: query.Int},
	"operation":     {Column: "operation"},
	"resource":      {Column: "resource"},
	"resource_type": {Column: "resource_type"},
	"username":      {Column: "username"},
	"op_time":       {Column: "op_time", Kind: query.Time},
	"project_id":    {Column: "project_id", Kind: query.Int},
	"address":       {Column: "address"},
	"request_id":    {Column: "request_id"},
}

// List returns a page of the log, newest first unless sorted otherwise.
// project 0 lists everything the subject may read: sysadmins (and robots
// with the system audit-log permission) everything, others the projects
// where they may list logs (project admins); a project lists that project
// and needs the log permission there.
func (l *Log) List(ctx context.Context, who access.Subject, project int64, q query.Query, page query.Page) ([]Entry, int64, error) {
	if !who.Authenticated() {
		return nil, 0, access.Refuse(who, access.List, access.AuditLog)
	}
	var scope string
	var scopeArgs []any
	if project != 0 {
		if err := l.access.Require(ctx, who, access.List, access.Log, project); err != nil {
			return nil, 0, err
		}
		scope, scopeArgs = "project_id = ?", []any{project}
	} else if ok, err := l.access.Can(ctx, who, access.List, access.AuditLog, 0); err != nil {
		return nil, 0, err
	} else if !ok {
		ids, all, err := l.access.ProjectsWhere(ctx, who, access.List, access.Log)
		if err != nil {
			return nil, 0, err
		}
		if !all {
			if len(ids) == 0 {
				return []Entry{}, 0, nil
			}
			scope = "project_id IN (" + marks(len(ids)) + ")"
			for _, id := range ids {
				scopeArgs = append(scopeArgs, id)
			}
		}
	}
	c, err := q.SQL(l.db.Dialect(), Fields, "op_time DESC", "id DESC")
	if err != nil {
		return nil, 0, err
	}
	where := c.WhereSQL(scope)
	args := append(scopeArgs, c.Args...)
	var total int64
	if err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log`+where, args...).Scan(&total); err != nil {
		return nil, 0, l.db.Wrap("audit log", err)
	}
	rows, err := l.db.Query(ctx, `SELECT id, project_id, operation, resource_type, resource, description, success, username, address, request_id, op_time FROM audit_log`+
		where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	if err != nil {
		return nil, 0, l.db.Wrap("audit log", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var ok bool
		var t int64
		if err := rows.Scan(&e.ID, &e.ProjectID, &e.Operation, &e.ResourceType, &e.Resource, &e.Description, &ok, &e.Username, &e.Address, &e.RequestID, &t); err != nil {
			return nil, 0, l.db.Wrap("audit log", err)
		}
		e.Failed, e.Time = !ok, sqldb.Time(t)
		out = append(out, e)
	}
	return out, total, l.db.Wrap("audit log", rows.Err())
}

// EventTypes are the types of event the log records (Harbor's list).
var EventTypes = []string{
	"create_artifact", "delete_artifact", "pull_artifact", "create_signature",
	"create_project", "delete_project", "delete_repository",
	"login_user", "logout_user", "create_user", "delete_user", "update_user",
	"create_robot", "delete_robot", "update_configuration",
	"create_member", "delete_member", "update_member", "update_project",
	// lading's own: user groups (LDAP, HTTP, OIDC).
	"create_user_group", "update_user_group", "delete_user_group",
}

// Purge deletes entries older than before; it returns how many went.
func (l *Log) Purge(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := l.db.Tx(ctx, "purge audit log", func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM audit_log WHERE op_time < ?`, sqldb.Nanos(before))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}

// PurgeEvents deletes the entries older than before whose type
// (operation_resourcetype) is one of types, "other" standing for every
// type not in EventTypes, in batches of a transaction each (Harbor's
// PURGE_AUDIT_LOG). With dryRun it only counts them. It returns how many
// went (or would); what it deleted stays deleted when ctx ends midway.
func (l *Log) PurgeEvents(ctx context.Context, before time.Time, types []string, dryRun bool) (int64, error) {
	var in []string
	other := false
	for _, t := range types {
		if t == "other" {
			other = true
		} else if t != "" {
			in = append(in, t)
		}
	}
	var conds []string
	args := []any{sqldb.Nanos(before)}
	if len(in) > 0 {
		conds = append(conds, `(operation || '_' || resource_type) IN (`+marks(len(in))+`)`)
		for _, t := range in {
			args = append(args, t)
		}
	}
	if other {
		conds = append(conds, `(operation || '_' || resource_type) NOT IN (`+marks(len(EventTypes))+`)`)
		for _, t := range EventTypes {
			args = append(args, t)
		}
	}
	if len(conds) == 0 {
		return 0, nil
	}
	where := ` WHERE op_time < ? AND (` + strings.Join(conds, " OR ") + `)`
	if dryRun {
		var n int64
		err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log`+where, args...).Scan(&n)
		return n, l.db.Wrap("audit log", err)
	}
	var total int64
	for {
		var n int64
		err := l.db.Tx(ctx, "purge audit log", func(tx *sqldb.Tx) error {
			res, err := tx.Exec(ctx, `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log`+where+` ORDER BY id LIMIT 5000)`, args...)
			if err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			return nil
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

func marks(n int) string {
	b := make([]byte, 0, 3*n)
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '?')
	}
	return string(b)
}

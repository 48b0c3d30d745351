package identity

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Robot is a robot account. Its name is shown with the configured prefix:
// "robot$ci" at system level, "robot$project+ci" in a project.
type Robot struct {
	ID          int64
	Name        string
	Description string
	Level       string
	ProjectID   int64
	Permissions []access.Permission
	// Duration is the lifetime in days, -1 for never expiring.
	Duration int64
	// ExpiresAt is a unix time, -1 for never.
	ExpiresAt   int64
	Disabled    bool
	CreatorType string
	CreatorRef  int64
	Created     time.Time
	Updated     time.Time
}

// RobotCreate is what creating a robot takes.
type RobotCreate struct {
	Name        string
	Description string
	Level       string
	Duration    int64
	Disabled    bool
	Permissions []access.Permission
	// Secret, when set, is the robot's secret; else one is generated.
	Secret string
}

var robotNameRe = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

const robotCols = `id, name, description, secret, level, project_id, permissions, duration, expires_at, disabled, creator_type, creator_ref, created, updated`

func scanRobot(row sqldb.Row) (Robot, string, error) {
	var r Robot
	var hash, perms string
	var created, updated int64
	err := row.Scan(&r.ID, &r.Name, &r.Description, &hash, &r.Level, &r.ProjectID, &perms, &r.Duration, &r.ExpiresAt, &r.Disabled, &r.CreatorType, &r.CreatorRef, &created, &updated)
	if err != nil {
		return r, "", err
	}
	r.Created, r.Updated = sqldb.Time(created), sqldb.Time(updated)
	if err := json.Unmarshal([]byte(perms), &r.Permissions); err != nil {
		return r, "", fmt.Errorf("robot %s permissions: %w", r.Name, err)
	}
	return r, hash, nil
}

func (s *Service) robotByName(ctx context.Context, name string) (Robot, string, error) {
	r, hash, err := scanRobot(s.db.QueryRow(ctx, `SELECT `+robotCols+` FROM robots WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Robot{}, "", errdefs.NotFound(fmt.Errorf("robot %s", name))
	}
	return r, hash, s.db.Wrap("robot "+name, err)
}

func (s *Service) robotByID(ctx context.Context, id int64) (Robot, error) {
	r, _, err := scanRobot(s.db.QueryRow(ctx, `SELECT `+robotCols+` FROM robots WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Robot{}, errdefs.NotFound(fmt.Errorf("robot %d not found", id))
	}
	return r, s.db.Wrap("robot", err)
}

func (s *Service) robotUsable(r Robot) error {
	if r.Disabled {
		return errdefs.Unauthorized(fmt.Errorf("robot %s is disabled", r.Name))
	}
	if r.ExpiresAt >= 0 && s.db.Now().Unix() >= r.ExpiresAt {
		return errdefs.Unauthorized(fmt.Errorf("robot %s has expired", r.Name))
	}
	return nil
}

func robotSubject(r Robot, prefix string) access.Subject {
	return access.Subject{Kind: access.KindRobot, ID: r.ID, Name: prefix + r.Name,
		Robot: &access.RobotGrant{Level: r.Level, ProjectID: r.ProjectID, Permissions: r.Permissions}}
}

func (s *Service) robotLogin(ctx context.Context, name, secret string) (access.Subject, error) {
	r, hash, err := s.robotByName(ctx, name)
	if errdefs.IsNotFound(err) {
		CheckPassword(dummyHash(), secret)
		return access.Subject{}, errBadCredentials
	}
	if err != nil {
		return access.Subject{}, err
	}
	if !s.checkCached("robot\x00"+r.Name, secret, hash) {
		return access.Subject{}, errBadCredentials
	}
	if err := s.robotUsable(r); err != nil {
		return access.Subject{}, err
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return access.Subject{}, err
	}
	return robotSubject(r, st.RobotNamePrefix), nil
}

// withPrefix shows a robot under the configured prefix.
func (s *Service) withPrefix(ctx context.Context, r Robot) Robot {
	if st, err := s.settings.Get(ctx); err == nil {
		r.Name = st.RobotNamePrefix + r.Name
	}
	return r
}

// robotProject resolves the project of a project-level robot's
// permissions (0 when it does not exist).
func (s *Service) robotProject(ctx context.Context, level string, perms []access.Permission) (access.ProjectInfo, error) {
	if level != access.LevelProject || len(perms) == 0 {
		return access.ProjectInfo{}, nil
	}
	p, err := s.projects.ProjectByName(ctx, perms[0].Namespace)
	if errdefs.IsNotFound(err) {
		return access.ProjectInfo{}, nil
	}
	return p, err
}

// requireRobotAccess checks who may do a on robots of a level (and
// project).
func (s *Service) requireRobotAccess(ctx context.Context, who access.Subject, a access.Action, level string, project int64) error {
	if !who.Authenticated() {
		return access.Refuse(who, a, access.Robot)
	}
	if level == access.LevelSystem {
		return s.access.Require(ctx, who, a, access.Robot, 0)
	}
	if project == 0 {
		// An unknown project: only a sysadmin learns it does not exist.
		if who.SysAdmin && who.Kind == access.KindUser {
			return errdefs.NotFound(errors.New("project not found"))
		}
		return access.Refuse(who, a, access.Robot)
	}
	return s.access.Require(ctx, who, a, access.Robot, project)
}

func checkDuration(d int64) error {
	if d != -1 && (d <= 0 || d >= math.MaxInt32) {
		return errdefs.InvalidArgument(fmt.Errorf("bad request error duration input: %d, duration must be either -1(Never) or a positive integer", d))
	}
	return nil
}

func expiry(created time.Time, days int64) int64 {
	if days == -1 {
		return -1
	}
	return created.AddDate(0, 0, int(days)).Unix()
}

// CreateRobot creates a robot and returns it with its secret, which is
// shown this once. A robot creating a robot may only give permissions it
// has itself.
func (s *Service) CreateRobot(ctx context.Context, who access.Subject, c RobotCreate) (Robot, string, error) {
	if len(c.Name) > 255 || !robotNameRe.MatchString(c.Name) {
		return Robot{}, "", errdefs.InvalidArgument(errors.New("robot name is not in lower case or contains illegal characters"))
	}
	if err := checkDuration(c.Duration); err != nil {
		return Robot{}, "", err
	}
	if err := access.Grantable(c.Level, c.Permissions); err != nil {
		return Robot{}, "", err
	}
	p, err := s.robotProject(ctx, c.Level, c.Permissions)
	if err != nil {
		return Robot{}, "", err
	}
	if err := s.requireRobotAccess(ctx, who, access.Create, c.Level, p.ID); err != nil {
		return Robot{}, "", err
	}
	creatorType := "local"
	if who.Kind == access.KindRobot {
		creatorType = "robot"
		if who.Robot == nil || !access.Covers(who.Robot.Permissions, c.Permissions) {
			return Robot{}, "", errdefs.Denied(fmt.Errorf("permission scope is invalid. It must be equal to or more restrictive than the creator robot's permissions: %s", who.Name))
		}
	}
	secret := c.Secret
	if secret != "" {
		if err := CheckPasswordRule(secret); err != nil {
			return Robot{}, "", err
		}
	} else {
		secret = RandomSecret(32)
	}
	name := c.Name
	if c.Level == access.LevelProject {
		name = p.Name + "+" + c.Name
	}
	perms, err := json.Marshal(c.Permissions)
	if err != nil {
		return Robot{}, "", errdefs.InvalidArgument(err)
	}
	hash := HashPassword(secret)
	var id int64
	err = s.db.Tx(ctx, "create robot "+name, func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM robots WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errdefs.Conflict(fmt.Errorf("robot account %s already exists", c.Name))
		}
		now := s.db.Now()
		if err := tx.QueryRow(ctx, `INSERT INTO robots (name, description, secret, level, project_id, permissions, duration, expires_at, disabled, creator_type, creator_ref, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			name, c.Description, hash, c.Level, p.ID, string(perms), c.Duration, expiry(now, c.Duration), c.Disabled, creatorType, who.ID, sqldb.Nanos(now), sqldb.Nanos(now)).Scan(&id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "create", ResourceType: "robot", Resource: name})
	})
	if err != nil {
		return Robot{}, "", err
	}
	r, err := s.robotByID(ctx, id)
	return s.withPrefix(ctx, r), secret, err
}

// GetRobot returns a robot.
func (s *Service) GetRobot(ctx context.Context, who access.Subject, id int64) (Robot, error) {
	if !who.Authenticated() {
		return Robot{}, access.Refuse(who, access.Read, access.Robot)
	}
	r, err := s.robotByID(ctx, id)
	if err != nil {
		return Robot{}, err
	}
	if err := s.requireRobotAccess(ctx, who, access.Read, r.Level, r.ProjectID); err != nil {
		return Robot{}, err
	}
	return s.withPrefix(ctx, r), nil
}

// RobotFields are the keys a robot listing may filter and sort by.
var RobotFields = query.Fields{
	"id":            {Column: "id", Kind: query.Int},
	"name":          {Column: "name"},
	"description":   {Column: "description"},
	"disabled":      {Column: "disabled", Kind: query.Bool},
	"creation_time": {Column: "created", Kind: query.Time},
	"expires_at":    {Column: "expires_at", Kind: query.Int},
}

// ListRobots lists the robots of a level: system robots (project 0) or
// those of a project, as Harbor's q=Level=project,ProjectID=1 asks.
func (s *Service) ListRobots(ctx context.Context, who access.Subject, level string, project int64, q query.Query, page query.Page) ([]Robot, int64, error) {
	if level != access.LevelSystem && level != access.LevelProject {
		return nil, 0, errdefs.InvalidArgument(errors.New("bad request error level input"))
	}
	if level == access.LevelProject {
		if project <= 0 {
			return nil, 0, errdefs.InvalidArgument(errors.New("ProjectID must be a positive integer"))
		}
		if _, err := s.projects.ProjectInfo(ctx, project); errdefs.IsNotFound(err) {
			project = 0
		} else if err != nil {
			return nil, 0, err
		}
	} else {
		project = 0
	}
	if err := s.requireRobotAccess(ctx, who, access.List, level, project); err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), RobotFields, "id ASC", "id")
	if err != nil {
		return nil, 0, err
	}
	where := c.WhereSQL("level = ?", "project_id = ?")
	args := append([]any{level, project}, c.Args...)
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM robots`+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("robots", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+robotCols+` FROM robots`+where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	if err != nil {
		return nil, 0, s.db.Wrap("robots", err)
	}
	defer rows.Close()
	out := []Robot{}
	for rows.Next() {
		r, _, err := scanRobot(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("robots", err)
		}
		out = append(out, s.withPrefix(ctx, r))
	}
	return out, total, s.db.Wrap("robots", rows.Err())
}

// RobotUpdate is what updating a robot takes; name and level cannot
// change.
type RobotUpdate struct {
	Name        string
	Level       string
	Description string
	Duration    *int64
	Disabled    bool
	Permissions []access.Permission
}

// UpdateRobot changes a robot's description, lifetime, disabled flag and
// permissions (within its project).
func (s *Service) UpdateRobot(ctx context.Context, who access.Subject, id int64, u RobotUpdate) error {
	if !who.Authenticated() {
		return access.Refuse(who, access.Update, access.Robot)
	}
	r, err := s.robotByID(ctx, id)
	if err != nil {
		return err
	}
	if err := s.requireRobotAccess(ctx, who, access.Update, r.Level, r.ProjectID); err != nil {
		return err
	}
	shown, bare := s.withPrefix(ctx, r).Name, r.Name
	if i := strings.LastIndexByte(bare, '+'); i >= 0 {
		bare = bare[i+1:]
	}
	if u.Level != r.Level || (u.Name != shown && u.Name != r.Name && u.Name != bare) {
		return errdefs.InvalidArgument(errors.New("cannot update the level or name of robot"))
	}
	duration := r.Duration
	if u.Duration != nil {
		duration = *u.Duration
	}
	if err := checkDuration(duration); err != nil {
		return err
	}
	perms := r.Permissions
	if len(u.Permissions) > 0 {
		if err := access.Grantable(r.Level, u.Permissions); err != nil {
			return err
		}
		if r.Level == access.LevelProject {
			p, err := s.robotProject(ctx, r.Level, u.Permissions)
			if err != nil {
				return err
			}
			if p.ID != r.ProjectID {
				return errdefs.InvalidArgument(errors.New("cannot update the project id of robot"))
			}
		}
		perms = u.Permissions
	}
	if who.Kind == access.KindRobot && (who.Robot == nil || !access.Covers(who.Robot.Permissions, perms)) {
		return errdefs.Denied(fmt.Errorf("permission scope is invalid. It must be equal to or more restrictive than the creator robot's permissions: %s", who.Name))
	}
	b, _ := json.Marshal(perms)
	return s.db.Tx(ctx, "update robot", func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE robots SET description = ?, duration = ?, expires_at = ?, disabled = ?, permissions = ?, updated = ? WHERE id = ?`,
			u.Description, duration, expiry(r.Created, duration), u.Disabled, string(b), sqldb.Nanos(s.db.Now()), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound(fmt.Errorf("robot %d not found", id))
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: r.ProjectID, Operation: "update", ResourceType: "robot", Resource: r.Name})
	})
}

// RefreshSecret replaces a robot's secret with secret (checked by the
// password rule) or, when empty, a generated one, which it returns.
func (s *Service) RefreshSecret(ctx context.Context, who access.Subject, id int64, secret string) (string, error) {
	if !who.Authenticated() {
		return "", access.Refuse(who, access.Update, access.Robot)
	}
	r, err := s.robotByID(ctx, id)
	if err != nil {
		return "", err
	}
	if err := s.requireRobotAccess(ctx, who, access.Update, r.Level, r.ProjectID); err != nil {
		return "", err
	}
	shown := ""
	if secret != "" {
		if err := CheckPasswordRule(secret); err != nil {
			return "", err
		}
	} else {
		secret = RandomSecret(32)
		shown = secret
	}
	hash := HashPassword(secret)
	err = s.db.Tx(ctx, "refresh robot secret", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE robots SET secret = ?, updated = ? WHERE id = ?`, hash, sqldb.Nanos(s.db.Now()), id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: r.ProjectID, Operation: "update", ResourceType: "robot", Resource: r.Name, Description: "refresh secret of robot " + r.Name})
	})
	return shown, err
}

// DeleteRobot deletes a robot.
func (s *Service) DeleteRobot(ctx context.Context, who access.Subject, id int64) error {
	if !who.Authenticated() {
		return access.Refuse(who, access.Delete, access.Robot)
	}
	r, err := s.robotByID(ctx, id)
	if err != nil {
		return err
	}
	if err := s.requireRobotAccess(ctx, who, access.Delete, r.Level, r.ProjectID); err != nil {
		return err
	}
	return s.db.Tx(ctx, "delete robot", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM robots WHERE id = ?`, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: r.ProjectID, Operation: "delete", ResourceType: "robot", Resource: r.Name})
	})
}

// DeleteProjectRobots deletes a project's robots, in the transaction that
// deletes the project.
func DeleteProjectRobots(ctx context.Context, tx *sqldb.Tx, project int64) error {
	_, err := tx.Exec(ctx, `DELETE FROM robots WHERE level = ? AND project_id = ?`, access.LevelProject, project)
	return err
}

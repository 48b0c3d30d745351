package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
)

// robotJSON is Harbor's Robot.
type robotJSON struct {
	ID           int64               `json:"id"`
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	Secret       string              `json:"secret,omitempty"`
	Level        string              `json:"level"`
	Duration     int64               `json:"duration"`
	Editable     bool                `json:"editable"`
	Disable      bool                `json:"disable"`
	ExpiresAt    int64               `json:"expires_at"`
	Permissions  []access.Permission `json:"permissions"`
	CreatorType  string              `json:"creator_type"`
	CreatorRef   int64               `json:"creator_ref"`
	CreationTime time.Time           `json:"creation_time"`
	UpdateTime   time.Time           `json:"update_time"`
}

func toRobot(r identity.Robot) robotJSON {
	return robotJSON{ID: r.ID, Name: r.Name, Description: r.Description, Level: r.Level, Duration: r.Duration, Editable: true,
		Disable: r.Disabled, ExpiresAt: r.ExpiresAt, Permissions: r.Permissions, CreatorType: r.CreatorType, CreatorRef: r.CreatorRef,
		CreationTime: r.Created.UTC(), UpdateTime: r.Updated.UTC()}
}

// robotReq is Harbor's RobotCreate (and, for updates, Robot).
type robotReq struct {
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Secret      string              `json:"secret"`
	Level       string              `json:"level"`
	Disable     bool                `json:"disable"`
	Duration    *int64              `json:"duration"`
	Permissions []access.Permission `json:"permissions"`
}

func (s *Server) listRobots(c *call) error {
	q, page, err := c.listing()
	if err != nil {
		return err
	}
	level, project := access.LevelSystem, int64(0)
	if l, ok := q.Get("Level"); ok {
		level = l
	}
	if p, ok := q.Get("ProjectID"); ok {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return errdefs.InvalidArgument(errdefsMsg("ProjectID must be a positive integer"))
		}
		project = n
	}
	if level == access.LevelProject {
		if _, ok := q.Get("ProjectID"); !ok {
			return errdefs.InvalidArgument(errdefsMsg("must with project ID when to query project robots"))
		}
	}
	list, total, err := s.svc.Identity.ListRobots(c.ctx, c.who, level, project, q, page)
	if err != nil {
		return err
	}
	out := make([]robotJSON, len(list))
	for i, r := range list {
		out[i] = toRobot(r)
	}
	return c.list(page, total, out)
}

func (s *Server) createRobot(c *call) error {
	var req robotReq
	if err := c.decode(&req); err != nil {
		return err
	}
	if req.Duration == nil {
		return errdefs.InvalidArgument(errdefsMsg("duration is required: -1 (never expires) or a number of days"))
	}
	r, secret, err := s.svc.Identity.CreateRobot(c.ctx, c.who, identity.RobotCreate{Name: req.Name, Description: req.Description, Level: req.Level,
		Duration: *req.Duration, Disabled: req.Disable, Permissions: req.Permissions, Secret: req.Secret})
	if err != nil {
		return err
	}
	c.w.Header().Set("Location", c.r.URL.Path+"/"+strconv.FormatInt(r.ID, 10))
	return c.json(http.StatusCreated, map[string]any{"id": r.ID, "name": r.Name, "secret": secret, "creation_time": r.Created.UTC(), "expires_at": r.ExpiresAt})
}

func (s *Server) getRobot(c *call) error {
	id, err := c.id("robot_id")
	if err != nil {
		return err
	}
	r, err := s.svc.Identity.GetRobot(c.ctx, c.who, id)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toRobot(r))
}

func (s *Server) updateRobot(c *call) error {
	id, err := c.id("robot_id")
	if err != nil {
		return err
	}
	var req robotReq
	if err := c.decode(&req); err != nil {
		return err
	}
	err = s.svc.Identity.UpdateRobot(c.ctx, c.who, id, identity.RobotUpdate{Name: req.Name, Level: req.Level, Description: req.Description,
		Duration: req.Duration, Disabled: req.Disable, Permissions: req.Permissions})
	if err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) refreshRobot(c *call) error {
	id, err := c.id("robot_id")
	if err != nil {
		return err
	}
	var req struct {
		Secret string `json:"secret"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	secret, err := s.svc.Identity.RefreshSecret(c.ctx, c.who, id, req.Secret)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]string{"secret": secret})
}

func (s *Server) deleteRobot(c *call) error {
	id, err := c.id("robot_id")
	if err != nil {
		return err
	}
	if err := s.svc.Identity.DeleteRobot(c.ctx, c.who, id); err != nil {
		return err
	}
	return c.ok()
}

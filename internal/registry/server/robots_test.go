package server_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/harbortest"
)

// TestRobots: Harbor's names, the secret shown once, refresh, disable,
// expiry, and robots creating only narrower robots.
func TestRobots(t *testing.T) {
	srv := harbortest.Start(t)
	ctx := context.Background()
	a := srv.Admin()
	perm := func(ns string, acts ...string) []*models.RobotPermission {
		p := &models.RobotPermission{Kind: "project", Namespace: ns}
		for _, x := range acts {
			p.Access = append(p.Access, &models.Access{Resource: "repository", Action: x})
		}
		return []*models.RobotPermission{p}
	}
	created, err := a.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(&models.RobotCreate{Name: "ci", Level: "project", Duration: 30, Permissions: perm("library", "push", "pull")}))
	if err != nil {
		t.Fatal(err)
	}
	r := created.Payload
	if r.Name != "robot$library+ci" || len(r.Secret) < 16 || r.ExpiresAt < time.Now().Add(29*24*time.Hour).Unix() {
		t.Errorf("created: %+v", r)
	}
	if !strings.HasSuffix(created.Location, "/robots/"+itoa(r.ID)) {
		t.Errorf("Location %q", created.Location)
	}
	got, err := a.Robot.GetRobotByID(ctx, robot.NewGetRobotByIDParams().WithRobotID(r.ID))
	if err != nil || got.Payload.Secret != "" || got.Payload.Level != "project" || got.Payload.Permissions[0].Namespace != "library" {
		t.Errorf("the secret is shown once: %+v %v", got, err)
	}
	// The robot logs in to the registry and the API with its permissions.
	img := harbortest.Image(t)
	if err := srv.Push(ctx, img, "library/robot", "v1", r.Name, r.Secret); err != nil {
		t.Errorf("robot push: %v", err)
	}
	if _, err := srv.API(r.Name, r.Secret).User.ListUsers(ctx, user.NewListUsersParams()); statusOf(err) != 403 {
		t.Errorf("robot lists users: %v", err)
	}
	// Refresh: the old secret stops working.
	ref, err := a.Robot.RefreshSec(ctx, robot.NewRefreshSecParams().WithRobotID(r.ID).WithRobotSec(&models.RobotSec{}))
	if err != nil || ref.Payload.Secret == "" || ref.Payload.Secret == r.Secret {
		t.Fatalf("refresh: %+v %v", ref, err)
	}
	if err := srv.Push(ctx, img, "library/robot", "v2", r.Name, r.Secret); err == nil {
		t.Error("the old secret still works")
	}
	secret := ref.Payload.Secret
	if err := srv.Push(ctx, img, "library/robot", "v2", r.Name, secret); err != nil {
		t.Errorf("the new secret: %v", err)
	}
	// A chosen secret must pass the password rule.
	if _, err := a.Robot.RefreshSec(ctx, robot.NewRefreshSecParams().WithRobotID(r.ID).WithRobotSec(&models.RobotSec{Secret: "weak"})); statusOf(err) != 400 {
		t.Errorf("weak secret: %v", err)
	}
	// Disabled, it cannot log in.
	if _, err := a.Robot.UpdateRobot(ctx, robot.NewUpdateRobotParams().WithRobotID(r.ID).WithRobot(&models.Robot{Name: r.Name, Level: "project", Duration: ptr(int64(30)), Disable: true, Permissions: perm("library", "push", "pull")})); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Pull(ctx, "library/robot:v1", r.Name, secret); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("disabled robot pulls: %v", err)
	}
	// Expiry: a robot of one day, a day and a second later.
	one, err := a.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(&models.RobotCreate{Name: "short", Level: "system", Duration: 1, Permissions: perm("*", "pull")}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Pull(ctx, "library/robot:v1", one.Payload.Name, one.Payload.Secret); err != nil {
		t.Errorf("fresh robot: %v", err)
	}
	srv.DB.SetClock(func() time.Time { return time.Now().Add(24*time.Hour + time.Second) })
	if _, err := srv.Pull(ctx, "library/robot:v1", one.Payload.Name, one.Payload.Secret); err == nil {
		t.Error("expired robot pulls")
	}
	srv.DB.SetClock(time.Now)
	// A robot allowed to manage robots creates only narrower ones.
	mgr, err := a.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(&models.RobotCreate{Name: "manager", Level: "system", Duration: -1, Permissions: []*models.RobotPermission{
		{Kind: "system", Namespace: "/", Access: []*models.Access{{Resource: "robot", Action: "create"}}},
		{Kind: "project", Namespace: "library", Access: []*models.Access{{Resource: "repository", Action: "pull"}}},
	}}))
	if err != nil {
		t.Fatal(err)
	}
	m := srv.API(mgr.Payload.Name, mgr.Payload.Secret)
	if _, err := m.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(&models.RobotCreate{Name: "narrow", Level: "system", Duration: -1, Permissions: perm("library", "pull")})); err != nil {
		t.Errorf("narrower robot: %v", err)
	}
	for name, p := range map[string][]*models.RobotPermission{"wider action": perm("library", "push"), "other project": perm("other", "pull"), "every project": perm("*", "pull")} {
		_, err := m.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(&models.RobotCreate{Name: "wide", Level: "system", Duration: -1, Permissions: p}))
		if statusOf(err) != 403 {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Names as Harbor's, permissions as Harbor allows them.
	for name, rc := range map[string]*models.RobotCreate{
		"upper case":       {Name: "CI", Level: "system", Duration: -1, Permissions: perm("*", "pull")},
		"plus":             {Name: "a+b", Level: "system", Duration: -1, Permissions: perm("*", "pull")},
		"level":            {Name: "x", Level: "global", Duration: -1, Permissions: perm("*", "pull")},
		"duration":         {Name: "x", Level: "system", Duration: -5, Permissions: perm("*", "pull")},
		"no permission":    {Name: "x", Level: "system", Duration: -1},
		"bad action":       {Name: "x", Level: "system", Duration: -1, Permissions: perm("*", "fly")},
		"two projects":     {Name: "x", Level: "project", Duration: -1, Permissions: append(perm("library", "pull"), perm("other", "pull")...)},
		"project wildcard": {Name: "x", Level: "project", Duration: -1, Permissions: perm("*", "pull")},
	} {
		if _, err := a.Robot.CreateRobot(ctx, robot.NewCreateRobotParams().WithRobot(rc)); statusOf(err) != 400 {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The prefix is configurable.
	if _, err := a.Configure.UpdateConfigurations(ctx, configUpdate(&models.Configurations{RobotNamePrefix: ptr("bot-")})); err != nil {
		t.Fatal(err)
	}
	got, _ = a.Robot.GetRobotByID(ctx, robot.NewGetRobotByIDParams().WithRobotID(mgr.Payload.ID))
	if got.Payload.Name != "bot-manager" {
		t.Errorf("renamed by the prefix: %q", got.Payload.Name)
	}
}

// TestLoginThrottle: failed logins slow down per user, then per address;
// a good password does not get through while blocked.
func TestLoginThrottle(t *testing.T) {
	srv := harbortest.Start(t)
	ctx := context.Background()
	bad := srv.API(admin, "wrong-password")
	for i := range 5 {
		if _, err := bad.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams()); statusOf(err) != 401 {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// The sixth failure blocks the user.
	bad.User.GetCurrentUserInfo(ctx, user.NewGetCurrentUserInfoParams())
	r := do(t, srv, "GET", "/api/v2.0/users/current", "", admin, adminPW)
	if code, _ := harborError(t, r); r.status != 429 || code != "TOO_MANY_REQUEST" || r.header.Get("Retry-After") == "" {
		t.Errorf("good password while blocked: %d %s %v", r.status, r.body, r.header)
	}
	// The registry and the token service say the same.
	if r := do(t, srv, "GET", "/service/token?scope=repository:library/x:pull", "", admin, adminPW); r.status != 429 {
		t.Errorf("token service while blocked: %d", r.status)
	}
	if r := do(t, srv, "GET", "/v2/", "", admin, adminPW); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("registry while blocked: %d", r.status)
	}
	// Later, it works again.
	srv.DB.SetClock(func() time.Time { return time.Now().Add(time.Minute) })
	defer srv.DB.SetClock(time.Now)
	if r := do(t, srv, "GET", "/api/v2.0/users/current", "", admin, adminPW); r.status != 200 {
		t.Errorf("after the block: %d %s", r.status, r.body)
	}
	// Per address: failures on many names from one address.
	for i := range 21 {
		do(t, srv, "GET", "/api/v2.0/users/current", "", "nobody"+itoa(int64(i)), "x")
	}
	if r := do(t, srv, "GET", "/api/v2.0/users/current", "", admin, adminPW); r.status != 429 {
		t.Errorf("address blocked: %d %s", r.status, r.body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

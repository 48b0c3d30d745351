package ui

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
)

// Interrogation services (Harbor's page of that name): the scanners'
// registrations (register, default, test, metadata, delete), the scan of
// all artifacts (now, its schedule, its progress) and the age of the
// default scanner's vulnerability database, from its metadata as Harbor's
// portal reads it.

// dbUpdatedKey is the scanner metadata property that dates the
// vulnerability database.
const dbUpdatedKey = "harbor.scanner-adapter/vulnerability-database-updated-at"

// scannerForm is the register form as typed; the credential is not
// shown again.
type scannerForm struct {
	Name, Description, URL, Auth string
	SkipCertVerify               bool
}

// vulnDB is what the page says of the default scanner's database.
type vulnDB struct {
	Scanner string
	Updated time.Time
	Age     string
	Digest  string
	Err     string
}

func (s *Server) adminInterrogation(c *call) error {
	return s.renderInterrogation(c, http.StatusOK, map[string]any{"Form": scannerForm{}})
}

func (s *Server) renderInterrogation(c *call, st int, extra map[string]any) error {
	list, _, err := s.scanners.ListScanners(c.ctx, c.who, query.Query{}, query.Page{Number: 1, Size: 100})
	if err != nil {
		return err
	}
	sch, err := s.scanners.ScanAllSchedule(c.ctx, c.who)
	if err != nil {
		return err
	}
	stats, err := s.scanners.ScanAllMetrics(c.ctx, c.who, false)
	if err != nil {
		return err
	}
	data := map[string]any{"Scanners": list, "Schedule": sch, "Stats": stats,
		"ScheduleTypes": []string{scanapi.ScheduleNone, scanapi.ScheduleHourly, scanapi.ScheduleDaily, scanapi.ScheduleWeekly, scanapi.ScheduleCustom}}
	for _, r := range list {
		if r.IsDefault {
			data["DB"] = s.vulnDBOf(c, r)
		}
	}
	if uuid := c.r.URL.Query().Get("metadata"); uuid != "" {
		m, err := s.scanners.ScannerMetadata(c.ctx, c.who, uuid)
		if refused(err) {
			return err
		}
		data["MetadataOf"], data["Metadata"] = uuid, m
		if err != nil {
			data["MetadataError"] = err.Error()
		}
	}
	return s.renderAdmin(c, st, "interrogation", "Interrogation services", withData(data, extra))
}

// vulnDBOf reads the database's date from a scanner's metadata.
func (s *Server) vulnDBOf(c *call, r scanapi.Registration) vulnDB {
	db := vulnDB{Scanner: r.Name}
	m, err := s.scanners.ScannerMetadata(c.ctx, c.who, r.UUID)
	if err != nil {
		db.Err = err.Error()
		return db
	}
	db.Digest = m.Properties["lading/vulnerability-database-digest"]
	v, ok := m.Properties[dbUpdatedKey]
	if !ok {
		db.Err = "the scanner reports no vulnerability database"
		return db
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		db.Err = "the scanner dates its database " + v
		return db
	}
	db.Updated, db.Age = t, age(time.Since(t))
	return db
}

// age writes a duration in the largest whole unit.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	}
	return plural(int(d/(24*time.Hour)), "day")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func (s *Server) adminCreateScanner(c *call) error {
	f := c.r.PostForm
	form := scannerForm{Name: strings.TrimSpace(f.Get("name")), Description: f.Get("description"), URL: strings.TrimSpace(f.Get("url")),
		Auth: f.Get("auth"), SkipCertVerify: f.Get("skip_cert_verify") == "on"}
	r := scanapi.Registration{Name: form.Name, Description: form.Description, URL: form.URL, Auth: form.Auth,
		AccessCredential: f.Get("access_credential"), SkipCertVerify: form.SkipCertVerify}
	if f.Get("action") == "ping" {
		err := s.scanners.PingScanner(c.ctx, c.who, r)
		if refused(err) {
			return err
		}
		return s.renderInterrogation(c, http.StatusOK, map[string]any{"Form": form, "Ping": pingResult(form.URL, err)})
	}
	_, err := s.scanners.CreateScanner(c.ctx, c.who, r)
	if formError(err) {
		return s.renderInterrogation(c, status(err), map[string]any{"Form": form, "FormError": err.Error()})
	}
	if err != nil {
		return err
	}
	c.flash("Scanner " + form.Name + " registered.")
	return c.redirect("/admin/interrogation")
}

// adminChangeScanner makes a scanner the default, tests it, or deletes
// it.
func (s *Server) adminChangeScanner(c *call) error {
	uuid := c.r.PathValue("uuid")
	var err error
	var msg string
	switch c.r.PostForm.Get("action") {
	case "default":
		err, msg = s.scanners.SetDefaultScanner(c.ctx, c.who, uuid, true), "Default scanner set."
	case "delete":
		var r scanapi.Registration
		r, err = s.scanners.DeleteScanner(c.ctx, c.who, uuid)
		msg = "Scanner " + r.Name + " deleted."
	case "ping":
		// A stored scanner is tested by asking its metadata with its
		// stored credential, which the service never hands out.
		r, err := s.scanners.Scanner(c.ctx, c.who, uuid)
		if err != nil {
			return err
		}
		_, perr := s.scanners.ScannerMetadata(c.ctx, c.who, uuid)
		if refused(perr) {
			return perr
		}
		return s.renderInterrogation(c, http.StatusOK, map[string]any{"Form": scannerForm{}, "Ping": pingResult(r.Name, perr)})
	default:
		return notFound("no action " + c.r.PostForm.Get("action"))
	}
	if formError(err) {
		c.flash(err.Error())
		return c.redirect("/admin/interrogation")
	}
	if err != nil {
		return err
	}
	c.flash(msg)
	return c.redirect("/admin/interrogation")
}

// adminScanAll starts a scan of all artifacts now, stops it, or sets its
// schedule.
func (s *Server) adminScanAll(c *call) error {
	f := c.r.PostForm
	var err error
	var msg string
	switch f.Get("action") {
	case "now":
		err, msg = s.scanners.SetScanAllSchedule(c.ctx, c.who, scanapi.Schedule{Type: scanapi.ScheduleManual}), "Scan of all artifacts started."
	case "stop":
		err, msg = s.scanners.StopScanAll(c.ctx, c.who), "Scan of all artifacts stopped."
	case "schedule":
		err, msg = s.scanners.SetScanAllSchedule(c.ctx, c.who, scanapi.Schedule{Type: f.Get("type"), Cron: strings.TrimSpace(f.Get("cron"))}), "Schedule saved."
	default:
		return notFound("no action " + f.Get("action"))
	}
	if formError(err) {
		c.flash(err.Error())
		return c.redirect("/admin/interrogation")
	}
	if err != nil {
		return err
	}
	c.flash(msg)
	return c.redirect("/admin/interrogation")
}

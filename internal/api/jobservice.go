package api

import (
	"net/http"
	"strconv"
	"time"
)

// The job service's endpoints: Harbor's /jobservice and /schedules.

// workerPoolJSON is Harbor's WorkerPool.
type workerPoolJSON struct {
	PID          int       `json:"pid"`
	WorkerPoolID string    `json:"worker_pool_id"`
	StartAt      time.Time `json:"start_at"`
	HeartbeatAt  time.Time `json:"heartbeat_at"`
	Concurrency  int       `json:"concurrency"`
	Host         string    `json:"host"`
}

// workerJSON is Harbor's Worker.
type workerJSON struct {
	ID        string     `json:"id"`
	PoolID    string     `json:"pool_id"`
	JobName   string     `json:"job_name,omitempty"`
	JobID     string     `json:"job_id,omitempty"`
	StartAt   *time.Time `json:"start_at,omitempty"`
	CheckIn   string     `json:"check_in,omitempty"`
	CheckinAt *time.Time `json:"checkin_at,omitempty"`
}

// jobQueueJSON is Harbor's JobQueue.
type jobQueueJSON struct {
	JobType string `json:"job_type"`
	Count   int64  `json:"count"`
	Latency int64  `json:"latency"`
	Paused  bool   `json:"paused"`
}

// scheduleTaskJSON is Harbor's ScheduleTask.
type scheduleTaskJSON struct {
	ID         int64     `json:"id"`
	VendorType string    `json:"vendor_type"`
	VendorID   int64     `json:"vendor_id"`
	Cron       string    `json:"cron"`
	UpdateTime time.Time `json:"update_time"`
}

func (s *Server) jobPools(c *call) error {
	pools, err := s.svc.Jobs.Pools(c.ctx, c.who)
	if err != nil {
		return err
	}
	out := make([]workerPoolJSON, len(pools))
	for i, p := range pools {
		out[i] = workerPoolJSON{PID: p.PID, WorkerPoolID: p.ID, StartAt: p.Started.UTC(), HeartbeatAt: p.Heartbeat.UTC(), Concurrency: p.Concurrency, Host: p.Host}
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) jobWorkers(c *call) error {
	ws, err := s.svc.Jobs.Workers(c.ctx, c.who, c.r.PathValue("pool_id"))
	if err != nil {
		return err
	}
	out := make([]workerJSON, len(ws))
	for i, w := range ws {
		out[i] = workerJSON{ID: w.ID, PoolID: w.PoolID}
		if w.JobID != 0 {
			start, checkin := w.Started.UTC(), w.CheckedIn.UTC()
			out[i].JobName, out[i].JobID = w.JobKind, strconv.FormatInt(w.JobID, 10)
			out[i].StartAt, out[i].CheckinAt = &start, &checkin
		}
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) stopJob(c *call) error {
	if err := s.svc.Jobs.StopJob(c.ctx, c.who, c.r.PathValue("job_id")); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) jobLog(c *call) error {
	log, err := s.svc.Jobs.JobLog(c.ctx, c.who, c.r.PathValue("job_id"))
	if err != nil {
		return err
	}
	return c.text(log)
}

// text answers 200 with a plain text body.
func (c *call) text(b []byte) error {
	h := c.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(http.StatusOK)
	if c.r.Method != http.MethodHead {
		c.w.Write(b)
	}
	return nil
}

func (s *Server) jobQueues(c *call) error {
	qs, err := s.svc.Jobs.Queues(c.ctx, c.who)
	if err != nil {
		return err
	}
	out := make([]jobQueueJSON, len(qs))
	for i, q := range qs {
		out[i] = jobQueueJSON{JobType: q.Kind, Count: q.Count, Latency: int64(q.Latency / time.Second), Paused: q.Paused}
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) jobQueueAction(c *call) error {
	var req struct {
		Action string `json:"action"`
	}
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := s.svc.Jobs.QueueAction(c.ctx, c.who, c.r.PathValue("job_type"), req.Action); err != nil {
		return err
	}
	return c.ok()
}

func (s *Server) listSchedules(c *call) error {
	page, err := c.page()
	if err != nil {
		return err
	}
	list, total, err := s.svc.Jobs.Schedules(c.ctx, c.who, page)
	if err != nil {
		return err
	}
	out := make([]scheduleTaskJSON, len(list))
	for i, sc := range list {
		out[i] = scheduleTaskJSON{ID: sc.ID, VendorType: sc.VendorType, VendorID: sc.VendorID, Cron: sc.Cron, UpdateTime: sc.Updated.UTC()}
	}
	return c.list(page, total, out)
}

func (s *Server) schedulePaused(c *call) error {
	paused, err := s.svc.Jobs.SchedulerPaused(c.ctx, c.who, c.r.PathValue("job_type"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]bool{"paused": paused})
}

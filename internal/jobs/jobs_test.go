package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
)

// scenarios run on SQLite and, unless -short, on one PostgreSQL server.
var scenarios = []struct {
	name string
	fn   func(t *testing.T, db *sqldb.DB)
}{
	{"RunAndRetry", testRunAndRetry},
	{"UniqueKey", testUniqueKey},
	{"Concurrency", testConcurrency},
	{"StopAndPause", testStopAndPause},
	{"LeaseExpiry", testLeaseExpiry},
	{"Schedules", testSchedules},
}

func TestSQLite(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.fn(t, sqldbtest.SQLite(t, jobs.Migrations)) })
	}
}

func TestPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL scenarios are skipped with -short")
	}
	srv := pgtest.Start(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.fn(t, sqldbtest.Postgres(t, srv, jobs.Migrations)) })
	}
}

// fast are options for tests: quick polls and leases.
func fast() jobs.Options {
	return jobs.Options{Workers: 4, Poll: 20 * time.Millisecond, Lease: 600 * time.Millisecond}
}

// start runs q until the test ends.
func start(t *testing.T, q *jobs.Queue) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); q.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// wait polls until every job in ids is finished and returns them.
func wait(t *testing.T, q *jobs.Queue, ids ...int64) map[int64]jobs.Info {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := q.GetMany(context.Background(), ids)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, i := range got {
			if jobs.Finished(i.State) {
				done++
			}
		}
		if done == len(ids) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs finished after 60s", done, len(ids))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testRunAndRetry(t *testing.T, db *sqldb.DB) {
	{
		ctx := context.Background()
		q := jobs.New(db, fast())
		var mu sync.Mutex
		runs := map[string]int{}
		type args struct {
			Name  string `json:"name"`
			Fails int    `json:"fails"`
		}
		q.Register(jobs.Definition{Kind: "TEST", MaxAttempts: 3, Backoff: func(int) time.Duration { return time.Millisecond },
			Run: jobs.Func(func(ctx context.Context, j *jobs.Job, a args) error {
				mu.Lock()
				runs[a.Name]++
				n := runs[a.Name]
				mu.Unlock()
				j.Log.Info("working", "name", a.Name, "attempt", j.Attempt)
				switch {
				case a.Name == "permanent":
					return jobs.Permanent(errors.New("bad input"))
				case a.Name == "panics":
					panic("boom")
				case n <= a.Fails:
					return fmt.Errorf("failure %d", n)
				}
				return nil
			})})
		start(t, q)
		cases := []struct {
			args    args
			state   string
			attempt int
		}{
			{args{Name: "ok"}, jobs.Success, 1},
			{args{Name: "flaky", Fails: 2}, jobs.Success, 3},
			{args{Name: "broken", Fails: 9}, jobs.Error, 3},
			{args{Name: "permanent"}, jobs.Error, 1},
			{args{Name: "panics"}, jobs.Error, 3},
		}
		var ids []int64
		for _, c := range cases {
			id, created, err := q.Enqueue(ctx, jobs.Request{Kind: "TEST", Args: c.args})
			if err != nil || !created {
				t.Fatal(err, created)
			}
			ids = append(ids, id)
		}
		// Arguments that do not decode fail at once.
		bad, _, err := q.Enqueue(ctx, jobs.Request{Kind: "TEST", Args: json.RawMessage(`{"name": 5}`)})
		if err != nil {
			t.Fatal(err)
		}
		got := wait(t, q, append(ids, bad)...)
		for i, c := range cases {
			j := got[ids[i]]
			if j.State != c.state || j.Attempt != c.attempt {
				t.Errorf("%s: state %s after %d attempts (error %q), want %s after %d", c.args.Name, j.State, j.Attempt, j.Error, c.state, c.attempt)
			}
		}
		if j := got[bad]; j.State != jobs.Error || j.Attempt != 1 || !strings.Contains(j.Error, "arguments") {
			t.Errorf("bad arguments: %+v", j)
		}
		log, err := q.Log(ctx, ids[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"[INFO] [attempt 1] attempt 1 of 3 started", "working name=flaky attempt=1", "[WARN] [attempt 1] attempt 1 failed: failure 1; retrying", "[INFO] [attempt 3] succeeded"} {
			if !strings.Contains(string(log), want) {
				t.Errorf("log of the flaky job lacks %q:\n%s", want, log)
			}
		}
		if log, _ := q.Log(ctx, ids[4]); !strings.Contains(string(log), "panic: boom") {
			t.Errorf("log of the panicking job:\n%s", log)
		}
		if _, err := q.Log(ctx, 999999); !errdefs.IsNotFound(err) {
			t.Errorf("log of a missing job: %v", err)
		}
	}
}

func testUniqueKey(t *testing.T, db *sqldb.DB) {
	{
		ctx := context.Background()
		q := jobs.New(db, fast())
		var n atomic.Int32
		q.Register(jobs.Definition{Kind: "ONCE", Run: func(context.Context, *jobs.Job) error { n.Add(1); return nil }})
		a, created, err := q.Enqueue(ctx, jobs.Request{Kind: "ONCE", Key: "k1"})
		if err != nil || !created {
			t.Fatal(err)
		}
		b, created, err := q.Enqueue(ctx, jobs.Request{Kind: "ONCE", Key: "k1"})
		if err != nil || created || b != a {
			t.Fatalf("second enqueue: id %d created %v err %v, want %d false", b, created, err, a)
		}
		r, _, err := q.Enqueue(ctx, jobs.Request{Kind: "ONCE", Key: "r1", ReleaseKey: true})
		if err != nil {
			t.Fatal(err)
		}
		start(t, q)
		wait(t, q, a, r)
		// A held key stays held; a released one can be used again.
		if b, created, _ := q.Enqueue(ctx, jobs.Request{Kind: "ONCE", Key: "k1"}); created || b != a {
			t.Errorf("held key reused: %d %v", b, created)
		}
		r2, created, err := q.Enqueue(ctx, jobs.Request{Kind: "ONCE", Key: "r1", ReleaseKey: true})
		if err != nil || !created || r2 == r {
			t.Errorf("released key: %d %v %v", r2, created, err)
		}
		wait(t, q, r2)
		if n.Load() != 3 {
			t.Errorf("%d runs, want 3", n.Load())
		}
		if _, _, err := q.Enqueue(ctx, jobs.Request{Kind: "bad kind!"}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("bad kind: %v", err)
		}
	}
}

// TestConcurrency runs two runners on one database: a kind's limit holds
// across them.
func testConcurrency(t *testing.T, db *sqldb.DB) {
	{
		ctx := context.Background()
		var now, peak atomic.Int32
		run := func(ctx context.Context, j *jobs.Job) error {
			n := now.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(15 * time.Millisecond)
			now.Add(-1)
			return nil
		}
		var qs []*jobs.Queue
		for range 2 {
			o := fast()
			o.Workers = 6
			q := jobs.New(db, o)
			q.Register(jobs.Definition{Kind: "LIMITED", Concurrency: 2, Run: run})
			qs = append(qs, q)
		}
		var ids []int64
		for range 30 {
			id, _, err := qs[0].Enqueue(ctx, jobs.Request{Kind: "LIMITED"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, q := range qs {
			start(t, q)
		}
		for _, j := range wait(t, qs[0], ids...) {
			if j.State != jobs.Success {
				t.Errorf("job %d: %s %s", j.ID, j.State, j.Error)
			}
		}
		if p := peak.Load(); p > 2 || p < 1 {
			t.Errorf("at most %d ran at once, want at most 2", p)
		}
	}
}

func testStopAndPause(t *testing.T, db *sqldb.DB) {
	{
		ctx := context.Background()
		q := jobs.New(db, fast())
		started := make(chan int64, 10)
		q.Register(jobs.Definition{Kind: "BLOCK", Run: func(ctx context.Context, j *jobs.Job) error {
			started <- j.ID
			<-ctx.Done()
			return ctx.Err()
		}})
		q.Register(jobs.Definition{Kind: "QUICK", Run: func(context.Context, *jobs.Job) error { return nil }})
		if err := q.SetPaused(ctx, "QUICK", true); err != nil {
			t.Fatal(err)
		}
		quick, _, _ := q.Enqueue(ctx, jobs.Request{Kind: "QUICK"})
		pending, _, _ := q.Enqueue(ctx, jobs.Request{Kind: "QUICK"})
		if err := q.Stop(ctx, pending); err != nil {
			t.Fatal(err)
		}
		running, _, _ := q.Enqueue(ctx, jobs.Request{Kind: "BLOCK"})
		start(t, q)
		if id := <-started; id != running {
			t.Fatalf("started %d, want %d", id, running)
		}
		if err := q.Stop(ctx, running); err != nil {
			t.Fatal(err)
		}
		got := wait(t, q, running, pending)
		if got[running].State != jobs.Stopped || got[pending].State != jobs.Stopped {
			t.Errorf("stopped jobs: %+v", got)
		}
		qs, err := q.Queues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []jobs.QueueInfo{{Kind: "BLOCK"}, {Kind: "QUICK", Count: 1, Paused: true}, {Kind: jobs.SchedulerKind}}
		if diff := cmp.Diff(want, qs, cmp.Comparer(func(a, b time.Duration) bool { return true })); diff != "" {
			t.Errorf("queues (-want +got):\n%s", diff)
		}
		if i, _ := q.Get(ctx, quick); i.State != jobs.Pending {
			t.Errorf("a job of a paused kind ran: %+v", i)
		}
		if err := q.SetPaused(ctx, "QUICK", false); err != nil {
			t.Fatal(err)
		}
		if got := wait(t, q, quick); got[quick].State != jobs.Success {
			t.Errorf("after resume: %+v", got[quick])
		}
		if err := q.Stop(ctx, 424242); !errdefs.IsNotFound(err) {
			t.Errorf("stop of a missing job: %v", err)
		}
	}
}

// TestLeaseExpiry plays a runner that died holding a job: the job runs
// again as a new attempt once the lease expires, and says so in its log.
func testLeaseExpiry(t *testing.T, db *sqldb.DB) {
	{
		ctx := context.Background()
		q := jobs.New(db, fast())
		q.Register(jobs.Definition{Kind: "LEASED", Run: func(context.Context, *jobs.Job) error { return nil }})
		id, _, err := q.Enqueue(ctx, jobs.Request{Kind: "LEASED"})
		if err != nil {
			t.Fatal(err)
		}
		past := sqldb.Nanos(time.Now().Add(-time.Second))
		if _, err := db.Exec(ctx, `UPDATE jobs SET state = 'Running', attempt = 1, pool = 'dead', due = ? WHERE id = ?`, past, id); err != nil {
			t.Fatal(err)
		}
		start(t, q)
		got := wait(t, q, id)[id]
		if got.State != jobs.Success || got.Attempt != 2 {
			t.Errorf("after the lease expired: %+v", got)
		}
		log, _ := q.Log(ctx, id)
		if !strings.Contains(string(log), "attempt 1 did not finish: its runner stopped answering") {
			t.Errorf("log:\n%s", log)
		}
	}
}

func TestPools(t *testing.T) {
	db := sqldbtest.SQLite(t, jobs.Migrations)
	ctx := context.Background()
	o := fast()
	o.Host = "test-host"
	q := jobs.New(db, o)
	release := make(chan struct{})
	started := make(chan struct{})
	q.Register(jobs.Definition{Kind: "HOLD", Run: func(ctx context.Context, j *jobs.Job) error { close(started); <-release; return nil }})
	id, _, _ := q.Enqueue(ctx, jobs.Request{Kind: "HOLD"})
	start(t, q)
	<-started
	pools, err := q.Pools(ctx)
	if err != nil || len(pools) != 1 || pools[0].Host != "test-host" || pools[0].Concurrency != 4 {
		t.Fatalf("pools: %+v %v", pools, err)
	}
	ws, err := q.Workers(ctx, "all")
	if err != nil || len(ws) != 4 {
		t.Fatalf("workers: %+v %v", ws, err)
	}
	busy := 0
	for _, w := range ws {
		if w.JobID == id && w.JobKind == "HOLD" && w.PoolID == pools[0].ID {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("workers: %+v", ws)
	}
	if _, err := q.Workers(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Errorf("workers of a missing pool: %v", err)
	}
	close(release)
	wait(t, q, id)
}

func TestParseCron(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{jobs.CronHourly, true},
		{jobs.CronDaily, true},
		{jobs.CronWeekly, true},
		{"0 */5 * * * *", true},
		{"0 0 12 * * MON-FRI", true},
		{"0 30 2 1,15 * *", true},
		{"* * * * * *", false},        // seconds must be 0
		{"0 * * * *", false},          // five fields
		{"0 0 0 * * * *", false},      // seven fields
		{"0 61 * * * *", false},       // minute out of range
		{"0 0 25 * * *", false},       // hour out of range
		{"0 0 0 31 2 *", false},       // never fires
		{"@daily", false},             // descriptors are not Harbor's
		{"TZ=UTC 0 0 0 * * *", false}, // time zones neither
		{"", false},
		{"0 0 0 * * " + strings.Repeat("1,", 100) + "1", false},
		{"0 a b c d e", false},
		{"0 0-0/0 * * * *", false},
	} {
		_, err := jobs.ParseCron(tc.expr)
		if (err == nil) != tc.ok {
			t.Errorf("ParseCron(%q) = %v, want ok=%v", tc.expr, err, tc.ok)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseCron(%q): error not of class invalid argument: %v", tc.expr, err)
		}
	}
	for typ, want := range map[string]string{jobs.TypeHourly: jobs.CronHourly, jobs.TypeDaily: jobs.CronDaily, jobs.TypeWeekly: jobs.CronWeekly, jobs.TypeNone: ""} {
		got, err := jobs.CronOf(typ, "ignored")
		if err != nil || got != want || (want != "" && jobs.TypeOf(got) != typ) {
			t.Errorf("CronOf(%s) = %q %v", typ, got, err)
		}
	}
	if _, err := jobs.CronOf("Sometimes", ""); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad type: %v", err)
	}
}

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{jobs.CronDaily, "0 */5 1-3 * JAN-MAR MON", "0 0 0 L * ?", "0 0/0 * * * *", "0 1-0 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sched, err := jobs.ParseCron(s)
		if err == nil {
			if next := sched.Next(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)); next.Second() != 0 {
				t.Fatalf("%q fires at a second other than 0: %v", s, next)
			}
		}
	})
}

// TestSchedules fires schedules with several runners on one database:
// each tick enqueues exactly one job.
func testSchedules(t *testing.T, db *sqldb.DB) {
	{
		ctx := context.Background()
		var clock atomic.Int64
		clock.Store(time.Date(2030, 1, 1, 10, 59, 0, 0, time.UTC).UnixNano())
		db.SetClock(func() time.Time { return time.Unix(0, clock.Load()) })
		var runs atomic.Int32
		var qs []*jobs.Queue
		for range 3 {
			q := jobs.New(db, fast())
			q.Register(jobs.Definition{Kind: "GARBAGE_COLLECTION", Run: func(context.Context, *jobs.Job) error { runs.Add(1); return nil }})
			qs = append(qs, q)
		}
		q := qs[0]
		id, err := q.SetSchedule(ctx, jobs.Schedule{VendorType: "GARBAGE_COLLECTION", Kind: "GARBAGE_COLLECTION", Cron: jobs.CronHourly, Args: json.RawMessage(`{"dry_run":true}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.SetSchedule(ctx, jobs.Schedule{VendorType: "X", Kind: "X", Cron: "0 0 0 31 2 *"}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("a schedule that never fires: %v", err)
		}
		s, err := q.GetSchedule(ctx, "GARBAGE_COLLECTION", 0)
		if err != nil || s.ID != id || !s.Next.Equal(time.Date(2030, 1, 1, 11, 0, 0, 0, time.UTC)) {
			t.Fatalf("schedule: %+v %v", s, err)
		}
		for _, q := range qs {
			start(t, q)
		}
		count := func() int64 {
			var n int64
			db.QueryRow(ctx, `SELECT COUNT(*) FROM jobs WHERE kind = 'GARBAGE_COLLECTION'`).Scan(&n)
			return n
		}
		waitCount := func(want int64) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for count() < want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			// Give the other runners time to fire a tick twice, if they would.
			time.Sleep(200 * time.Millisecond)
			if got := count(); got != want {
				t.Fatalf("%d jobs, want %d", got, want)
			}
		}
		// Three ticks pass while the runners run, then one tick is paused.
		for tick := range 3 {
			clock.Add(int64(time.Hour))
			waitCount(int64(tick + 1))
		}
		if err := q.SetPaused(ctx, jobs.SchedulerKind, true); err != nil {
			t.Fatal(err)
		}
		clock.Add(int64(time.Hour))
		time.Sleep(200 * time.Millisecond)
		if got := count(); got != 3 {
			t.Errorf("a paused scheduler fired: %d jobs", got)
		}
		m := jobs.NewMonitor(q, nil)
		_ = m
		if err := q.SetPaused(ctx, jobs.SchedulerKind, false); err != nil {
			t.Fatal(err)
		}
		waitCount(4)
		list, total, err := q.Schedules(ctx, query.Page{Number: 1, Size: 10})
		if err != nil || total != 1 || len(list) != 1 || list[0].Cron != jobs.CronHourly || string(list[0].Args) != `{"dry_run":true}` {
			t.Errorf("schedules: %+v %d %v", list, total, err)
		}
		if err := q.DeleteSchedule(ctx, "GARBAGE_COLLECTION", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := q.GetSchedule(ctx, "GARBAGE_COLLECTION", 0); !errdefs.IsNotFound(err) {
			t.Errorf("deleted schedule: %v", err)
		}
	}
}

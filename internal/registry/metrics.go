package registry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the registry's Prometheus metrics, in a registry of their own
// (no global state). WithMetrics records them and serves them at /metrics
// on the registry's port (to users only, when authentication is on);
// Handler serves them on another listener.
type Metrics struct {
	reg             *prometheus.Registry
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	inFlight        prometheus.Gauge
	bytesIn         prometheus.Counter
	bytesOut        prometheus.Counter
	manifestsPushed prometheus.Counter
	gcRuns          prometheus.Counter
	gcBlobs         prometheus.Counter
	gcBytes         prometheus.Counter
	gcUploads       prometheus.Counter
	gcLast          prometheus.Gauge
	h               http.Handler
}

// NewMetrics creates the metrics, with the Go runtime's and the process's.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lading_registry_http_requests_total",
			Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lading_registry_http_request_duration_seconds",
			Help:    "HTTP request latency by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lading_registry_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lading_registry_blob_bytes_received_total",
			Help: "Blob bytes received from clients.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lading_registry_http_response_bytes_total",
			Help: "Response body bytes sent.",
		}),
		manifestsPushed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lading_registry_manifests_pushed_total",
			Help: "Manifests pushed.",
		}),
		gcRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lading_registry_gc_runs_total",
			Help: "Garbage collections run (dry runs excluded).",
		}),
		gcBlobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lading_registry_gc_blobs_deleted_total",
			Help: "Blobs deleted by garbage collection.",
		}),
		gcBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lading_registry_gc_bytes_deleted_total",
			Help: "Bytes of blobs deleted by garbage collection.",
		}),
		gcUploads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lading_registry_gc_uploads_expired_total",
			Help: "Upload sessions expired by garbage collection.",
		}),
		gcLast: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lading_registry_gc_last_run_timestamp_seconds",
			Help: "When the last garbage collection finished.",
		}),
	}
	f(m.requests)
	f(m.duration)
	f(m.inFlight)
	f(m.bytesIn)
	f(m.bytesOut)
	f(m.manifestsPushed)
	f(m.gcRuns)
	f(m.gcBlobs)
	f(m.gcBytes)
	f(m.gcUploads)
	f(m.gcLast)
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.h = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// Registry is the Prometheus registry holding the metrics, for callers
// that add their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler { return m.h }

func (m *Metrics) observe(method, route string, status int, d time.Duration, in, out int64) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
	m.bytesOut.Add(float64(out))
}

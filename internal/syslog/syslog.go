// Package syslog sends messages to a syslog collector over TCP, as RFC 5424
// messages framed by octet counting (RFC 6587, 3.4.1), the way Harbor's
// log collector and rsyslog receive them:
//
//	87 <110>1 2024-05-01T10:00:00.000000Z host lading - audit - {"operation":"create",...}
//
// Sending never blocks the caller: messages queue (up to a bound; beyond
// it they are counted and dropped) and one goroutine writes them,
// reconnecting with a backoff when the collector goes away.
package syslog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Facilities and severities used by lading.
const (
	FacilityUser   = 1
	FacilityAudit  = 13
	FacilityLocal0 = 16

	SeverityError   = 3
	SeverityWarning = 4
	SeverityInfo    = 6
	SeverityDebug   = 7
)

// Writer sends messages to one collector.
type Writer struct {
	addr     string
	app      string
	host     string
	log      *slog.Logger
	queue    chan []byte
	dropped  atomic.Int64
	done     chan struct{}
	stopOnce sync.Once
	stop     chan struct{}
}

// queueLen bounds the messages waiting for the collector.
const queueLen = 8192

// Dial returns a writer to the collector at addr (host:port), tagging
// messages with app. It connects in the background; log receives its own
// troubles (it must not itself be a handler writing to w).
func Dial(addr, app string, log *slog.Logger) *Writer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "-"
	}
	w := &Writer{addr: addr, app: app, host: host, log: log, queue: make(chan []byte, queueLen), done: make(chan struct{}), stop: make(chan struct{})}
	go w.run()
	return w
}

// Addr is the collector's address.
func (w *Writer) Addr() string { return w.addr }

// Dropped counts messages dropped because the queue was full.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Send queues a message: facility and severity as RFC 5424 numbers, msgid
// a short tag ("audit", "access"), msg the text (a JSON record).
func (w *Writer) Send(facility, severity int, t time.Time, msgid, msg string) {
	frame := Format(facility, severity, t, w.host, w.app, msgid, msg)
	select {
	case w.queue <- frame:
	default:
		w.dropped.Add(1)
	}
}

// Format returns one octet-counted RFC 5424 frame.
func Format(facility, severity int, t time.Time, host, app, msgid, msg string) []byte {
	if msgid == "" {
		msgid = "-"
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	body := fmt.Sprintf("<%d>1 %s %s %s %d %s - %s", facility*8+severity, t.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), field(host), field(app), os.Getpid(), field(msgid), msg)
	return []byte(fmt.Sprintf("%d %s", len(body), body))
}

// field makes s a valid RFC 5424 header field: printable ASCII, no spaces,
// at most 48 characters.
func field(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > 32 && r < 127 {
			b.WriteRune(r)
		}
		if b.Len() == 48 {
			break
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// Close sends what is queued (for at most a few seconds) and stops.
func (w *Writer) Close() error {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	var conn net.Conn
	var bw *bufio.Writer
	var closed *atomic.Bool // set when the collector closed conn
	backoff := 100 * time.Millisecond
	var pending []byte
	deadline := time.Time{}
	for {
		if pending == nil {
			select {
			case pending = <-w.queue:
			case <-w.stop:
				if deadline.IsZero() {
					deadline = time.Now().Add(3 * time.Second)
				}
				select {
				case pending = <-w.queue:
				default:
					if conn != nil {
						bw.Flush()
						conn.Close()
					}
					return
				}
			}
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			if conn != nil {
				conn.Close()
			}
			return
		}
		if conn != nil && closed.Load() {
			// A write to a connection the peer closed succeeds
			// locally and is lost; the reader noticed the close.
			conn.Close()
			conn = nil
		}
		if conn == nil {
			d := net.Dialer{Timeout: 5 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, err := d.DialContext(ctx, "tcp", w.addr)
			cancel()
			if err != nil {
				w.log.Warn("syslog: cannot reach the collector; retrying", "address", w.addr, "error", err)
				select {
				case <-time.After(backoff):
				case <-w.stop:
					if deadline.IsZero() {
						deadline = time.Now().Add(3 * time.Second)
					}
				}
				backoff = min(backoff*2, 30*time.Second)
				continue
			}
			conn, bw, backoff = c, bufio.NewWriter(c), 100*time.Millisecond
			closed = new(atomic.Bool)
			go func(c net.Conn, closed *atomic.Bool) {
				// Collectors send nothing; a read ends when they close.
				io.Copy(io.Discard, c)
				closed.Store(true)
			}(c, closed)
		}
		conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := bw.Write(pending)
		if err == nil && len(w.queue) == 0 {
			err = bw.Flush()
		}
		if err != nil {
			w.log.Warn("syslog: write failed; reconnecting", "address", w.addr, "error", err)
			conn.Close()
			conn = nil
			continue // resend pending on the new connection
		}
		pending = nil
	}
}

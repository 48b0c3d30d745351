package syslog_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/syslog"
)

// rfc5424 is the header of an RFC 5424 message: PRI, version, timestamp,
// host, app, procid, msgid, structured data.
var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ \S+ \d+ \S+ - `)

func TestFormat(t *testing.T) {
	frame := string(syslog.Format(syslog.FacilityAudit, syslog.SeverityInfo, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), "host name", "lading", "audit", "a\nb"))
	n, msg, _ := strings.Cut(frame, " ")
	if l, _ := strconv.Atoi(n); l != len(msg) {
		t.Errorf("octet count %s, message of %d bytes", n, len(msg))
	}
	if m := rfc5424.FindStringSubmatch(msg); m == nil || m[1] != "110" {
		t.Errorf("not RFC 5424: %q", msg)
	}
	if !strings.Contains(msg, " hostname lading ") || !strings.HasSuffix(msg, "- a b") {
		t.Errorf("fields: %q", msg)
	}
}

// TestWriterReconnects sends to a collector that goes away and comes back.
func TestWriterReconnects(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	got := make(chan string, 100)
	serve := func(l net.Listener, once bool) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			for {
				n, err := br.ReadString(' ')
				if err != nil {
					break
				}
				size, _ := strconv.Atoi(strings.TrimSpace(n))
				b := make([]byte, size)
				if _, err := io.ReadFull(br, b); err != nil {
					break
				}
				got <- string(b)
				if once {
					c.Close()
					l.Close()
					return
				}
			}
		}
	}
	go serve(l, true)
	w := syslog.Dial(addr, "lading", nil)
	defer w.Close()
	h := slog.New(syslog.NewHandler(func() *syslog.Writer { return w }, "app", slog.LevelInfo))
	h.Info("first", "request_id", "r1")
	if m := <-got; !strings.Contains(m, `"msg":"first"`) || !strings.Contains(m, `"request_id":"r1"`) || !strings.HasPrefix(m, "<134>1 ") {
		t.Errorf("first: %q", m)
	}
	// The collector is gone; it comes back on the same address.
	time.Sleep(100 * time.Millisecond)
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address taken meanwhile: %v", err)
	}
	defer l2.Close()
	go serve(l2, false)
	for i := range 5 {
		h.Warn("again", "i", i)
	}
	deadline := time.After(20 * time.Second)
	for seen := 0; seen < 1; {
		select {
		case m := <-got:
			if strings.Contains(m, `"msg":"again"`) {
				seen++
			}
		case <-deadline:
			t.Fatal("nothing after the collector came back")
		}
	}
}

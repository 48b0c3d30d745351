// Package syslogtest is a syslog collector for tests: it listens on
// loopback TCP and keeps the RFC 5424 messages it receives framed by octet
// counting (RFC 6587), as rsyslog and Harbor's log collector receive them.
package syslogtest

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Collector receives syslog messages until the test ends.
type Collector struct {
	addr string
	mu   sync.Mutex
	msgs []string
}

// Start starts a collector on 127.0.0.1; it stops when the test ends.
func Start(t testing.TB) *Collector {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c := &Collector{addr: l.Addr().String()}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go c.read(conn)
		}
	}()
	return c
}

// Addr is the collector's host:port.
func (c *Collector) Addr() string { return c.addr }

func (c *Collector) read(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		size, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(size))
		if err != nil || n <= 0 || n > 1<<20 {
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, string(msg))
		c.mu.Unlock()
	}
}

// Messages returns the messages received so far.
func (c *Collector) Messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// Wait returns the first message match accepts, waiting up to timeout for
// it; it fails the test, listing what came, when none does.
func (c *Collector) Wait(t testing.TB, timeout time.Duration, what string, match func(msg string) bool) string {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; {
		msgs := c.Messages()
		for _, m := range msgs {
			if match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no syslog message %s among %d:\n%s", what, len(msgs), strings.Join(msgs, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

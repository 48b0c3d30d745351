package contenttrust

import (
	"container/list"
	"sync"
)

// lru holds up to n verdicts, forgetting the least recently used.
type lru struct {
	mu    sync.Mutex
	n     int
	order *list.List // of *entry, most recent first
	byKey map[string]*list.Element
}

type entry struct {
	key string
	v   verdict
}

func newLRU(n int) *lru {
	return &lru{n: n, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *lru) get(key string) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok {
		return verdict{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*entry).v, true
}

func (c *lru) put(key string, v verdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		e.Value.(*entry).v = v
		c.order.MoveToFront(e)
		return
	}
	c.byKey[key] = c.order.PushFront(&entry{key: key, v: v})
	for c.order.Len() > c.n {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*entry).key)
	}
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

package ui

import (
	"net/url"
	"strconv"

	"github.com/lading-dev/lading/internal/query"
)

// pageSize is how many rows a listing shows.
const pageSize = 25

// pageOf reads ?page= (from 1).
func (c *call) pageOf() query.Page {
	n, err := strconv.ParseInt(c.r.URL.Query().Get("page"), 10, 64)
	if err != nil || n < 1 || n > 1<<31 {
		n = 1
	}
	return query.Page{Number: n, Size: pageSize}
}

// pager is the "1–25 of 10000, previous, next" line of a listing.
type pager struct {
	From, To, Total int64
	Page, Pages     int64
	Prev, Next      string
}

func newPager(u *url.URL, p query.Page, total int64) pager {
	pg := pager{Total: total, Page: p.Number, Pages: (total + p.Size - 1) / p.Size}
	if total > 0 {
		pg.From = (p.Number-1)*p.Size + 1
		pg.To = min(p.Number*p.Size, total)
	}
	link := func(n int64) string {
		q := u.Query()
		q.Set("page", strconv.FormatInt(n, 10))
		return u.Path + "?" + q.Encode()
	}
	if p.Number > 1 {
		pg.Prev = link(min(p.Number-1, max(pg.Pages, 1)))
	}
	if p.Number < pg.Pages {
		pg.Next = link(p.Number + 1)
	}
	return pg
}

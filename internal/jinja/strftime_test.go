package jinja

import (
	"testing"
	"time"
)

// The expected strings are Python 3's datetime.strftime on Linux.
func TestStrftime(t *testing.T) {
	tm := time.Date(2026, 12, 6, 7, 5, 9, 0, time.UTC)
	for format, want := range map[string]string{
		"%Y-%m-%d %-d %e %j %I %p %a %A %b %B %w %u %F %D %T %c %x %X %y %-m %-H %%": "2026-12-06 6  6 340 07 AM Sun Sunday Dec December 0 7 2026-12-06 12/06/26 07:05:09 Sun Dec  6 07:05:09 2026 12/06/26 07:05:09 26 12 7 %",
		"%d %b %Y":       "06 Dec 2026",
		"year 2006 %Q %": "year 2006 %Q %",
	} {
		if got := Strftime(tm, format); got != want {
			t.Errorf("Strftime(%q) = %q, want %q", format, got, want)
		}
	}
}

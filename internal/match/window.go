package match

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	// Time zones in rule files must mean the same on every machine, with
	// or without a zoneinfo database installed.
	_ "time/tzdata"
)

// Window is a weekly time window: "Mon-Fri 09:00-17:00 Europe/Paris".
type Window struct {
	src string
	// days has bit d set for each time.Weekday d the window is open on.
	days uint8
	// from and to are minutes since midnight; to <= from wraps past
	// midnight ("22:00-06:00"), and the hours after midnight belong to the
	// day the window opened.
	from, to int
	allDay   bool
	loc      *time.Location
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

var errWindowSyntax = errors.New(`want [days] [HH:MM-HH:MM] [time zone], such as "Mon-Fri 09:00-17:00 Europe/Paris", "Sat,Sun", "22:00-06:00 UTC"`)

// ParseWindow reads a time window: days (Mon, Mon-Fri, Sat,Sun, Fri-Mon,
// daily), hours (09:00-17:30, 22:00-06:00), and an IANA time zone (UTC
// when left out), in that order, each optional but not all.
func ParseWindow(s string) (Window, error) {
	w := Window{src: s, days: 0x7f, allDay: true, loc: time.UTC}
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 3 {
		return Window{}, errWindowSyntax
	}
	i := 0
	if f := fields[0]; !isDigit(f[0]) {
		days, err := parseDays(f)
		switch {
		case err == nil:
			w.days = days
			i++
		case len(fields) > 1 || strings.Contains(f, "/"):
			// More follows, or it looks like a zone: then it was
			// meant as days (or is a zone, which the code below reads).
			if !strings.Contains(f, "/") {
				return Window{}, err
			}
		default:
			// A lone word that is not days may be a zone ("UTC"); if
			// it is not one either, the days message says more.
			if _, zerr := time.LoadLocation(f); zerr != nil || f == "Local" {
				return Window{}, err
			}
		}
	}
	if i < len(fields) && isDigit(fields[i][0]) {
		from, to, ok := strings.Cut(fields[i], "-")
		if !ok {
			return Window{}, fmt.Errorf("hours %q: want HH:MM-HH:MM", fields[i])
		}
		var err error
		if w.from, err = parseClock(from, false); err != nil {
			return Window{}, err
		}
		if w.to, err = parseClock(to, true); err != nil {
			return Window{}, err
		}
		if w.from == w.to {
			return Window{}, fmt.Errorf("hours %q open and close at the same time", fields[i])
		}
		w.allDay = false
		i++
	}
	if i < len(fields) {
		name := fields[i]
		if name == "Local" || name == "" {
			return Window{}, fmt.Errorf("time zone %q: name a zone such as Europe/Paris or UTC; the server's zone would make rules differ between machines", name)
		}
		loc, err := time.LoadLocation(name)
		if err != nil {
			return Window{}, fmt.Errorf("unknown time zone %q (want an IANA name such as Europe/Paris or UTC)", name)
		}
		w.loc = loc
		i++
	}
	if i < len(fields) {
		return Window{}, errWindowSyntax
	}
	return w, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseDays reads "Mon", "Mon-Fri", "Sat,Sun", "Mon-Wed,Fri", "daily".
func parseDays(s string) (uint8, error) {
	if strings.EqualFold(s, "daily") {
		return 0x7f, nil
	}
	var days uint8
	for part := range strings.SplitSeq(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, ok := dayNames[strings.ToLower(a)]
		if !ok {
			return 0, fmt.Errorf("unknown day %q (want Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, or daily)", a)
		}
		to := from
		if isRange {
			if to, ok = dayNames[strings.ToLower(b)]; !ok {
				return 0, fmt.Errorf("unknown day %q (want Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as Mon-Fri, or daily)", b)
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			days |= 1 << d
			if d == to {
				break
			}
		}
	}
	return days, nil
}

// parseClock reads HH:MM as minutes since midnight; 24:00 only as an end.
func parseClock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case !ok || err1 != nil || err2 != nil || len(m) != 2 || len(h) == 0 || len(h) > 2,
		hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && (mm != 0 || !end):
		return 0, fmt.Errorf("invalid time of day %q (want HH:MM from 00:00 to 23:59, or 24:00 as an end)", s)
	}
	return hh*60 + mm, nil
}

// String returns the window as written.
func (w Window) String() string { return w.src }

// Location returns the window's time zone (UTC when it names none).
func (w Window) Location() *time.Location { return w.loc }

// Contains reports whether t falls in the window.
func (w *Window) Contains(t time.Time) bool {
	t = t.In(w.loc)
	day := t.Weekday()
	if w.allDay {
		return w.days&(1<<day) != 0
	}
	now := t.Hour()*60 + t.Minute()
	if w.from < w.to {
		return w.days&(1<<day) != 0 && w.from <= now && now < w.to
	}
	// Wraps past midnight: the evening belongs to today, the small hours
	// to the day before.
	if now >= w.from {
		return w.days&(1<<day) != 0
	}
	if now < w.to {
		return w.days&(1<<((day+6)%7)) != 0
	}
	return false
}

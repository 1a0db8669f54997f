package expr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

var dayNames = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

func dateMember(v Value, name string) (Value, error) {
	t := v.Time()
	switch name {
	case "Year":
		return Int(int64(t.Year())), nil
	case "Month":
		return Int(int64(t.Month())), nil
	case "Day":
		return Int(int64(t.Day())), nil
	case "Hour":
		return Int(int64(t.Hour())), nil
	case "Minute":
		return Int(int64(t.Minute())), nil
	case "Second":
		return Int(int64(t.Second())), nil
	case "Millisecond":
		return Int(int64(t.Nanosecond() / 1e6)), nil
	case "DayOfYear":
		return Int(int64(t.YearDay())), nil
	case "DayOfWeek":
		return enumVal(int64(t.Weekday()), dayNames[t.Weekday()]), nil
	case "Ticks", "UtcTicks":
		return Int(t.UnixNano()/100 + 621355968000000000), nil
	case "Date":
		return Time(t.Truncate(24 * time.Hour)), nil
	case "TimeOfDay":
		return Duration(t.Sub(t.Truncate(24 * time.Hour))), nil
	case "UtcDateTime", "DateTime", "LocalDateTime":
		return v, nil
	case "Offset":
		return Duration(0), nil
	}
	return Null, fmt.Errorf("unknown member %s on DateTime", name)
}

func timeSpanMember(d time.Duration, name string) (Value, error) {
	switch name {
	case "TotalMilliseconds":
		return Double(float64(d) / float64(time.Millisecond)), nil
	case "TotalSeconds":
		return Double(d.Seconds()), nil
	case "TotalMinutes":
		return Double(d.Minutes()), nil
	case "TotalHours":
		return Double(d.Hours()), nil
	case "TotalDays":
		return Double(d.Hours() / 24), nil
	case "Days":
		return Int(int64(d / (24 * time.Hour))), nil
	case "Hours":
		return Int(int64(d/time.Hour) % 24), nil
	case "Minutes":
		return Int(int64(d/time.Minute) % 60), nil
	case "Seconds":
		return Int(int64(d/time.Second) % 60), nil
	case "Milliseconds":
		return Int(int64(d/time.Millisecond) % 1000), nil
	case "Ticks":
		return Int(int64(d / 100)), nil
	}
	return Null, fmt.Errorf("unknown member %s on TimeSpan", name)
}

func dateMethod(c *callExpr, v Value, args []Value) (Value, error) {
	t := v.Time()
	add := func(unit time.Duration) (Value, error) {
		if len(args) != 1 || !isNumber(args[0].k) {
			return Null, argErr(c, args)
		}
		return Time(t.Add(time.Duration(args[0].Float() * float64(unit)))), nil
	}
	switch c.name {
	case "AddMilliseconds":
		return add(time.Millisecond)
	case "AddSeconds":
		return add(time.Second)
	case "AddMinutes":
		return add(time.Minute)
	case "AddHours":
		return add(time.Hour)
	case "AddDays":
		return add(24 * time.Hour)
	case "AddMonths", "AddYears":
		if len(args) != 1 || args[0].k != KInt {
			return Null, argErr(c, args)
		}
		if c.name == "AddMonths" {
			return Time(t.AddDate(0, int(args[0].n), 0)), nil
		}
		return Time(t.AddDate(int(args[0].n), 0, 0)), nil
	case "Add":
		if len(args) == 1 && args[0].k == KTimeSpan {
			return Value{k: KDateTime, n: v.n + args[0].n}, nil
		}
	case "Subtract":
		if len(args) == 1 && args[0].k == KTimeSpan {
			return Value{k: KDateTime, n: v.n - args[0].n}, nil
		}
		if len(args) == 1 && args[0].k == KDateTime {
			return Value{k: KTimeSpan, n: v.n - args[0].n}, nil
		}
	case "ToUnixTimeSeconds":
		return Int(t.Unix()), nil
	case "ToUnixTimeMilliseconds":
		return Int(t.UnixMilli()), nil
	case "ToUniversalTime", "ToLocalTime":
		return v, nil
	case "ToString":
		if len(args) >= 1 {
			s, err := formatDateTime(t, toString(args[0]))
			return String(s), err
		}
	}
	return Null, fmt.Errorf("method %s is not supported on DateTime", c.name)
}

// formatDateTime implements .NET standard and custom date format strings
// (invariant culture, UTC).
func formatDateTime(t time.Time, f string) (string, error) {
	t = t.UTC()
	switch f {
	case "":
		return t.Format("01/02/2006 15:04:05"), nil
	case "o", "O":
		return t.Format("2006-01-02T15:04:05.0000000Z"), nil
	case "s":
		return t.Format("2006-01-02T15:04:05"), nil
	case "u":
		return t.Format("2006-01-02 15:04:05Z"), nil
	case "r", "R":
		return t.Format("Mon, 02 Jan 2006 15:04:05 GMT"), nil
	case "d":
		return t.Format("01/02/2006"), nil
	case "D":
		return t.Format("Monday, 02 January 2006"), nil
	case "t":
		return t.Format("15:04"), nil
	case "T":
		return t.Format("15:04:05"), nil
	case "g":
		return t.Format("01/02/2006 15:04"), nil
	case "G":
		return t.Format("01/02/2006 15:04:05"), nil
	case "f":
		return t.Format("Monday, 02 January 2006 15:04"), nil
	case "F":
		return t.Format("Monday, 02 January 2006 15:04:05"), nil
	}
	if len(f) == 1 {
		return "", fmt.Errorf("unsupported date format %q", f)
	}
	var b strings.Builder
	for i := 0; i < len(f); {
		c := f[i]
		n := 1
		for i+n < len(f) && f[i+n] == c {
			n++
		}
		num := func(v, width int) {
			s := strconv.Itoa(v)
			for len(s) < width {
				s = "0" + s
			}
			b.WriteString(s)
		}
		switch c {
		case 'y':
			if n == 2 {
				num(t.Year()%100, 2)
			} else {
				num(t.Year(), n)
			}
		case 'M':
			switch {
			case n >= 4:
				b.WriteString(t.Month().String())
			case n == 3:
				b.WriteString(t.Month().String()[:3])
			default:
				num(int(t.Month()), n)
			}
		case 'd':
			switch {
			case n >= 4:
				b.WriteString(t.Weekday().String())
			case n == 3:
				b.WriteString(t.Weekday().String()[:3])
			default:
				num(t.Day(), n)
			}
		case 'H':
			num(t.Hour(), n)
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			num(h, n)
		case 'm':
			num(t.Minute(), n)
		case 's':
			num(t.Second(), n)
		case 'f', 'F':
			frac := fmt.Sprintf("%09d", t.Nanosecond())
			if n > 7 {
				n = 7
			}
			s := frac[:n]
			if c == 'F' {
				s = strings.TrimRight(s, "0")
			}
			b.WriteString(s)
		case 't':
			ampm := "AM"
			if t.Hour() >= 12 {
				ampm = "PM"
			}
			b.WriteString(ampm[:min(n, 2)])
		case 'z':
			switch n {
			case 1:
				b.WriteString("+0")
			case 2:
				b.WriteString("+00")
			default:
				b.WriteString("+00:00")
			}
		case 'K':
			b.WriteString("Z")
		case '\'', '"':
			end := strings.IndexByte(f[i+1:], c)
			if end < 0 {
				return "", fmt.Errorf("invalid date format %q: unterminated quote", f)
			}
			b.WriteString(f[i+1 : i+1+end])
			i += end + 2
			continue
		case '\\':
			if i+1 < len(f) {
				b.WriteByte(f[i+1])
			}
			i += 2
			continue
		default:
			b.WriteString(f[i : i+n])
		}
		i += n
	}
	return b.String(), nil
}

var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05", "2006-01-02", time.RFC1123, time.RFC1123Z,
	"01/02/2006 15:04:05", "01/02/2006", "1/2/2006 3:04:05 PM", "1/2/2006"}

func parseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("string %q was not recognized as a valid DateTime", s)
}

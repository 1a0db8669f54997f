package server

import (
	"bufio"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// exposition is a parsed Prometheus text exposition: the value of every
// series, keyed by seriesKey, and each family's type.
type exposition struct {
	values map[string]float64
	types  map[string]string
}

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// parseExposition parses text strictly by the Prometheus text format
// (version 0.0.4): HELP and TYPE once per family and before its samples,
// a family's samples together, valid names, label values with only the
// three escapes the format knows, no repeated label or series, numeric
// values; histograms cumulative with +Inf equal to _count; counters named
// *_total. Any violation fails the test.
func parseExposition(text string) (e exposition, err error) {
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(parseError)
			if !ok {
				panic(r)
			}
			err = pe
		}
	}()
	e = exposition{values: map[string]float64{}, types: map[string]string{}}
	helped := map[string]bool{}
	done := map[string]bool{} // families whose samples are over
	current := ""
	fail := func(n int, line, format string, args ...any) {
		bad("line %d %q: %s", n, line, fmt.Sprintf(format, args...))
	}
	type histKey struct{ family, labels string }
	buckets := map[histKey][]float64{}
	counts := map[histKey]float64{}

	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			fail(n, line, "empty line")
		}
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 3 || (f[1] != "HELP" && f[1] != "TYPE") {
				fail(n, line, "comment is neither HELP nor TYPE")
			}
			name := f[2]
			if !metricName.MatchString(name) {
				fail(n, line, "bad metric name")
			}
			if done[name] || (current != "" && current != name && e.types[name] != "") {
				fail(n, line, "family %s declared again", name)
			}
			if current != name {
				if current != "" {
					done[current] = true
				}
				current = name
			}
			switch f[1] {
			case "HELP":
				if helped[name] || len(f) < 4 {
					fail(n, line, "HELP repeated or empty")
				}
				helped[name] = true
			case "TYPE":
				if e.types[name] != "" || len(f) != 4 {
					fail(n, line, "TYPE repeated or malformed")
				}
				switch f[3] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					fail(n, line, "unknown type")
				}
				if f[3] == "counter" && !strings.HasSuffix(name, "_total") {
					fail(n, line, "counter not named *_total")
				}
				e.types[name] = f[3]
			}
			continue
		}
		name, labels, rest := splitSample(n, line)
		family := name
		typ := e.types[current]
		switch {
		case typ == "histogram" && (name == current+"_bucket" || name == current+"_sum" || name == current+"_count"):
			family = current
		case typ == "summary" && (name == current+"_sum" || name == current+"_count"):
			family = current
		}
		if family != current || typ == "" {
			fail(n, line, "sample outside its family's TYPE (current family %q)", current)
		}
		v, err := parseValue(rest)
		if err != nil {
			fail(n, line, "value: %v", err)
		}
		key := seriesKey(name, labels)
		if _, dup := e.values[key]; dup {
			fail(n, line, "series repeated")
		}
		e.values[key] = v
		if typ == "histogram" {
			le, hasLE := labels["le"]
			rest := map[string]string{}
			for k, v := range labels {
				if k != "le" {
					rest[k] = v
				}
			}
			hk := histKey{family, seriesKey("", rest)}
			switch name {
			case family + "_bucket":
				if !hasLE {
					fail(n, line, "bucket without le")
				}
				b := buckets[hk]
				if len(b) > 0 && v < b[len(b)-1] {
					fail(n, line, "buckets not cumulative")
				}
				if le == "+Inf" {
					v = -v - 1 // marks +Inf seen, keeping the count
				}
				buckets[hk] = append(b, v)
			case family + "_count":
				counts[hk] = v
			}
		}
	}
	for hk, b := range buckets {
		last := b[len(b)-1]
		if last >= 0 {
			bad("histogram %s%s has no le=\"+Inf\" bucket last", hk.family, hk.labels)
		}
		if inf := -last - 1; inf != counts[hk] {
			bad("histogram %s%s: +Inf bucket %v, _count %v", hk.family, hk.labels, inf, counts[hk])
		}
	}
	return e, nil
}

type parseError string

func (e parseError) Error() string { return "exposition: " + string(e) }

func bad(format string, args ...any) { panic(parseError(fmt.Sprintf(format, args...))) }

// mustParseExposition parses text or fails the test.
func mustParseExposition(t *testing.T, text string) exposition {
	t.Helper()
	e, err := parseExposition(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return e
}

func splitSample(n int, line string) (string, map[string]string, string) {
	labels := map[string]string{}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		bad("line %d %q: no value", n, line)
	}
	name := line[:i]
	if !metricName.MatchString(name) {
		bad("line %d %q: bad metric name", n, line)
	}
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq <= 0 || !labelNameRE.MatchString(rest[:eq]) {
				bad("line %d %q: bad label at %q", n, line, rest)
			}
			lname := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' {
					if j+1 >= len(rest) {
						break
					}
					switch rest[j+1] {
					case '\\':
						val.WriteByte('\\')
					case '"':
						val.WriteByte('"')
					case 'n':
						val.WriteByte('\n')
					default:
						bad("line %d %q: escape \\%c", n, line, rest[j+1])
					}
					j++
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				if c == '\n' {
					bad("line %d: raw newline in label", n)
				}
				val.WriteByte(c)
			}
			if !closed {
				bad("line %d %q: unterminated label value", n, line)
			}
			if _, dup := labels[lname]; dup {
				bad("line %d %q: label %s repeated", n, line, lname)
			}
			labels[lname] = val.String()
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				bad("line %d %q: expected , or } at %q", n, line, rest)
			}
		}
	}
	if !strings.HasPrefix(rest, " ") {
		bad("line %d %q: no space before the value", n, line)
	}
	return name, labels, rest[1:]
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	if strings.ContainsAny(s, " \t") {
		return 0, fmt.Errorf("timestamps are not expected: %q", s)
	}
	return strconv.ParseFloat(s, 64)
}

// seriesKey renders name{k="v",...} with labels sorted and empty values
// dropped (the format treats an empty label as an absent one).
func seriesKey(name string, labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k, v := range labels {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// value returns a series' value, failing the test when it is absent.
func (e exposition) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := e.values[seriesKey(name, labels)]
	if !ok {
		var near []string
		for k := range e.values {
			if strings.HasPrefix(k, name+"{") {
				near = append(near, k)
			}
		}
		sort.Strings(near)
		t.Fatalf("no series %s; %s has:\n%s", seriesKey(name, labels), name, strings.Join(near, "\n"))
	}
	return v
}

// The parser itself must reject what Prometheus would.
func TestParseExpositionRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, text string }{
		{"sample before TYPE", "a_total 1\n"},
		{"bad escape", "# HELP a_total h\n# TYPE a_total counter\na_total{x=\"\\t\"} 1\n"},
		{"counter without _total", "# HELP a h\n# TYPE a counter\na 1\n"},
		{"family split", "# HELP a g\n# TYPE a gauge\na 1\n# HELP b g\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n"},
		{"histogram without +Inf", "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"},
		{"histogram +Inf not count", "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n"},
		{"repeated series", "# HELP a g\n# TYPE a gauge\na 1\na 2\n"},
		{"bad value", "# HELP a g\n# TYPE a gauge\na one\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := parseExposition(tc.text); err == nil {
				t.Errorf("accepted:\n%s", tc.text)
			}
		})
	}
}

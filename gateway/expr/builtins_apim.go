package expr

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// jwtValue is APIM's Jwt (parsed only; signatures are not checked here,
// validate-jwt does that).
type jwtValue struct {
	header map[string]any
	claims *claimsMap
}

// claimsMap is Jwt.Claims: IReadOnlyDictionary<string, string[]>.
type claimsMap struct {
	names []string
	vals  map[string][]string
}

func (m *claimsMap) Get(name string) ([]string, bool) { v, ok := m.vals[name]; return v, ok }
func (m *claimsMap) Names() []string                  { return m.names }

func (j *jwtValue) first(name string) string {
	if v, ok := j.claims.vals[name]; ok && len(v) > 0 {
		return v[0]
	}
	return ""
}

// ParseJwt returns the token as the Jwt object expressions see (what
// AsJwt() gives), or false when it is not a well-formed JWT. Policies that
// hand a validated token to later expressions use it.
func ParseJwt(token string) (Value, bool) {
	j := parseJwt(token)
	if j == nil {
		return Null, false
	}
	return Host(j), true
}

func parseJwt(s string) *jwtValue {
	s = strings.TrimSpace(s)
	if len(s) > 7 && strings.EqualFold(s[:7], "bearer ") {
		s = strings.TrimSpace(s[7:])
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	pb, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err1 != nil || err2 != nil {
		return nil
	}
	j := &jwtValue{claims: &claimsMap{vals: map[string][]string{}}}
	if json.Unmarshal(hb, &j.header) != nil {
		return nil
	}
	payload, err := ParseJSON(pb)
	if err != nil || payload.k != KJObject {
		return nil
	}
	o := payload.Object()
	for i, k := range o.keys {
		var vals []string
		if v := o.vals[i]; v.k == KJArray {
			for _, it := range v.List().Items {
				vals = append(vals, claimString(it))
			}
		} else {
			vals = []string{claimString(v)}
		}
		j.claims.names = append(j.claims.names, k)
		j.claims.vals[k] = vals
	}
	return j
}

func claimString(v Value) string {
	if v.k == KJObject || v.k == KJArray {
		return toJSON(v, false)
	}
	if v.k == KBool {
		if v.n != 0 {
			return "true"
		}
		return "false"
	}
	return toString(v)
}

func (j *jwtValue) unixClaim(name string) Value {
	s := j.first(name)
	if s == "" {
		return Null
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return Null
	}
	return Time(time.Unix(int64(f), 0))
}

// basicValue is the result of AsBasic().
type basicValue struct{ user, password string }

func parseBasic(s string) *basicValue {
	s = strings.TrimSpace(s)
	if len(s) > 6 && strings.EqualFold(s[:6], "basic ") {
		s = strings.TrimSpace(s[6:])
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	u, p, ok := strings.Cut(string(b), ":")
	if !ok {
		return nil
	}
	return &basicValue{user: u, password: p}
}

// uriValue is System.Uri.
type uriValue struct{ u *url.URL }

func (u *uriValue) String() string { return u.u.String() }

func newUri(s string) (Value, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return Null, fmt.Errorf("invalid URI: the format of the URI could not be determined")
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return Host(&uriValue{u: u}), nil
}

// urlString renders an APIM IUrl as its full URL (default port omitted).
func urlString(u URL) string {
	var b strings.Builder
	b.WriteString(u.Scheme())
	b.WriteString("://")
	b.WriteString(u.Host())
	if p := u.Port(); p != 0 && !(p == 443 && u.Scheme() == "https" || p == 80 && u.Scheme() == "http") {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p))
	}
	b.WriteString(u.Path())
	b.WriteString(u.QueryString())
	return b.String()
}

// matchValue is a Regex Match or Group.
type matchValue struct {
	success bool
	value   string
	index   int
	groups  *matchGroups
}

type matchGroups struct {
	groups []Value
	names  []string
}

func (g *matchGroups) get(key Value) (Value, error) {
	if key.k == KInt {
		if key.n >= 0 && int(key.n) < len(g.groups) {
			return g.groups[key.n], nil
		}
		return Host(&matchValue{}), nil
	}
	name := toString(key)
	for i, n := range g.names {
		if n == name {
			return g.groups[i], nil
		}
	}
	return Host(&matchValue{}), nil
}

func apimMember(o any, name string) (Value, error) {
	switch h := o.(type) {
	case *jwtValue:
		switch name {
		case "Claims":
			return Host(h.claims), nil
		case "Subject":
			return String(h.first("sub")), nil
		case "Issuer":
			return String(h.first("iss")), nil
		case "Id":
			return String(h.first("jti")), nil
		case "Audiences":
			return StringArray(h.claims.vals["aud"]), nil
		case "ExpirationTime":
			return h.unixClaim("exp"), nil
		case "NotBefore":
			return h.unixClaim("nbf"), nil
		case "IssuedAt":
			return h.unixClaim("iat"), nil
		case "Algorithm":
			s, _ := h.header["alg"].(string)
			return String(s), nil
		case "Type":
			s, _ := h.header["typ"].(string)
			return String(s), nil
		}
	case *basicValue:
		switch name {
		case "UserId":
			return String(h.user), nil
		case "Password":
			return String(h.password), nil
		}
	case *uriValue:
		u := h.u
		switch name {
		case "Host":
			return String(u.Hostname()), nil
		case "Port":
			if p := u.Port(); p != "" {
				n, _ := strconv.Atoi(p)
				return Int(int64(n)), nil
			}
			if u.Scheme == "https" {
				return Int(443), nil
			}
			return Int(80), nil
		case "Scheme":
			return String(u.Scheme), nil
		case "AbsolutePath", "LocalPath":
			return String(u.EscapedPath()), nil
		case "AbsoluteUri", "OriginalString":
			return String(u.String()), nil
		case "PathAndQuery":
			if u.RawQuery != "" {
				return String(u.EscapedPath() + "?" + u.RawQuery), nil
			}
			return String(u.EscapedPath()), nil
		case "Query":
			if u.RawQuery != "" {
				return String("?" + u.RawQuery), nil
			}
			return String(""), nil
		case "Fragment":
			if u.Fragment != "" {
				return String("#" + u.Fragment), nil
			}
			return String(""), nil
		case "Authority":
			return String(u.Host), nil
		case "Segments":
			p := u.EscapedPath()
			var segs []string
			for len(p) > 0 {
				i := strings.IndexByte(p[1:], '/')
				if i < 0 {
					segs = append(segs, p)
					break
				}
				segs = append(segs, p[:i+2])
				p = p[i+2:]
			}
			return StringArray(segs), nil
		}
	case *matchValue:
		switch name {
		case "Success":
			return Bool(h.success), nil
		case "Value":
			return String(h.value), nil
		case "Index":
			return Int(int64(h.index)), nil
		case "Length":
			return Int(int64(len(h.value))), nil
		case "Groups":
			if h.groups == nil {
				return Host(&matchGroups{}), nil
			}
			return Host(h.groups), nil
		}
	case *matchGroups:
		if name == "Count" {
			return Int(int64(len(h.groups))), nil
		}
	}
	return Null, fmt.Errorf("unknown member %s on %s", name, hostTypeName(o))
}

func apimMethod(ev *evaluator, c *callExpr, o any, args []Value) (Value, bool, error) {
	if m, ok := o.(*matchValue); ok && c.name == "ToString" {
		return String(m.value), true, nil
	}
	return Null, false, nil
}

// apimStringMethod implements APIM's string extensions.
func apimStringMethod(c *callExpr, s string, args []Value) (Value, bool, error) {
	switch c.name {
	case "AsJwt":
		if j := parseJwt(s); j != nil {
			return Host(j), true, nil
		}
		return Null, true, nil
	case "TryParseJwt":
		if len(args) != 1 {
			return Null, true, argErr(c, args)
		}
		j := parseJwt(s)
		if j == nil {
			args[0] = Null
			return Bool(false), true, nil
		}
		args[0] = Host(j)
		return Bool(true), true, nil
	case "AsBasic":
		if b := parseBasic(s); b != nil {
			return Host(b), true, nil
		}
		return Null, true, nil
	case "TryParseBasic":
		if len(args) != 1 {
			return Null, true, argErr(c, args)
		}
		b := parseBasic(s)
		if b == nil {
			args[0] = Null
			return Bool(false), true, nil
		}
		args[0] = Host(b)
		return Bool(true), true, nil
	}
	return Null, false, nil
}

// bodyAs implements Body.As<T>(preserveContent: bool).
func bodyAs(c *callExpr, b Body, args []Value) (Value, error) {
	if len(c.targs) != 1 {
		return Null, fmt.Errorf("As needs a type argument, e.g. As<string>()")
	}
	preserve := len(args) == 1 && args[0].k == KBool && args[0].n != 0
	data, err := b.Read(preserve)
	if err != nil {
		return Null, err
	}
	t := c.targs[0]
	switch {
	case t.name == "string":
		return String(string(data)), nil
	case t.name == "byte" && t.array:
		return Bytes(data), nil
	case t.name == "JObject":
		return parseJSONKind(string(data), KJObject)
	case t.name == "JArray":
		return parseJSONKind(string(data), KJArray)
	case t.name == "JToken":
		return parseJSONKind(string(data), KNull)
	}
	return Null, fmt.Errorf("body As<%s> is not supported", t)
}

// Regular expressions: .NET syntax is translated where Go's RE2 has an
// equivalent; lookaround and backreferences are rejected.
var regexCache sync.Map // pattern+options -> *regexp.Regexp

func compileRegex(pattern string, opts int64) (*regexp.Regexp, error) {
	key := strconv.FormatInt(opts, 10) + ":" + pattern
	if r, ok := regexCache.Load(key); ok {
		return r.(*regexp.Regexp), nil
	}
	flags := ""
	if opts&1 != 0 {
		flags += "i"
	}
	if opts&2 != 0 {
		flags += "m"
	}
	if opts&16 != 0 {
		flags += "s"
	}
	p := pattern
	if flags != "" {
		p = "(?" + flags + ")" + p
	}
	r, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("unsupported regular expression %q: %v", pattern, err)
	}
	regexCache.Store(key, r)
	return r, nil
}

func regexFn(name string) staticFunc {
	return func(_ *evaluator, c *callExpr, a []Value) (Value, error) {
		if name == "Escape" || name == "Unescape" {
			if len(a) != 1 {
				return Null, argErr(c, a)
			}
			if name == "Escape" {
				return String(regexp.QuoteMeta(toString(a[0]))), nil
			}
			return String(strings.ReplaceAll(toString(a[0]), `\`, "")), nil
		}
		if len(a) < 2 {
			return Null, argErr(c, a)
		}
		if a[0].k == KNull {
			return Null, fmt.Errorf("value cannot be null (input)")
		}
		in := toString(a[0])
		var opts int64
		optIdx := 2
		if name == "Replace" {
			optIdx = 3
		}
		if len(a) > optIdx && a[optIdx].k == KEnum {
			opts = a[optIdx].n
		}
		r, err := compileRegex(toString(a[1]), opts)
		if err != nil {
			return Null, err
		}
		switch name {
		case "IsMatch":
			return Bool(r.MatchString(in)), nil
		case "Match":
			return Host(regexMatch(r, in, r.FindStringSubmatchIndex(in))), nil
		case "Matches":
			var out []Value
			for _, loc := range r.FindAllStringSubmatchIndex(in, -1) {
				out = append(out, Host(regexMatch(r, in, loc)))
			}
			return NewArray(out), nil
		case "Replace":
			if len(a) < 3 {
				return Null, argErr(c, a)
			}
			if a[2].k == KLambda {
				return Null, fmt.Errorf("regex replace with a MatchEvaluator is not supported")
			}
			return String(r.ReplaceAllString(in, toString(a[2]))), nil
		case "Split":
			return StringArray(r.Split(in, -1)), nil
		}
		return Null, argErr(c, a)
	}
}

func regexMatch(r *regexp.Regexp, in string, loc []int) *matchValue {
	if loc == nil {
		return &matchValue{groups: &matchGroups{}}
	}
	g := &matchGroups{names: r.SubexpNames()}
	for i := 0; i+1 < len(loc); i += 2 {
		if loc[i] < 0 {
			g.groups = append(g.groups, Host(&matchValue{}))
			continue
		}
		g.groups = append(g.groups, Host(&matchValue{success: true, value: in[loc[i]:loc[i+1]], index: loc[i]}))
	}
	return &matchValue{success: true, value: in[loc[0]:loc[1]], index: loc[0], groups: g}
}

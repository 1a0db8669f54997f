package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/expr"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/cachestore"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// Cache is the store behind cache-lookup, cache-store, cache-lookup-value,
// cache-store-value and cache-remove-value: cachestore.Memory for one
// instance, cachestore.Redis for API Management's external cache shared by
// replicas. Cached entries should survive configuration reloads, so the
// server creates one store at start and passes it in every Options.
type Cache interface {
	// Get returns key's value (not to be modified); false on a miss. On
	// an error the lookup is a miss.
	Get(key string) ([]byte, bool, error)
	// Set stores value under key for ttl; on an error the entry is
	// dropped.
	Set(key string, value []byte, ttl time.Duration) error
	Delete(key string) error
}

// Key spaces: values of cache-store-value and responses of cache-store
// share the store without colliding.
const (
	cacheValuePrefix    = "v:"
	cacheResponsePrefix = "r:"
)

// cache returns the Set's store; without one in Options, an in-memory
// store that lives as long as the Set (entries are lost at every reload).
func (c *compiler) cache() Cache {
	if c.set.opts.Cache == nil {
		c.set.opts.Cache = cachestore.NewMemory(0, nil)
	}
	return c.set.opts.Cache
}

// cachingType reads caching-type (internal, external, prefer-external; no
// expressions). The gateway has one cache: the external one when
// cache.external.connectionString is configured, its in-memory one
// otherwise; every caching type uses it. external without an external
// cache is a load warning.
func (c *compiler) cachingType(el *policyxml.Element) error {
	a, ok := el.Attr("caching-type")
	if !ok {
		return nil
	}
	if a.Expr {
		return fmt.Errorf("attribute caching-type cannot be a policy expression")
	}
	switch strings.TrimSpace(a.Value) {
	case "internal", "prefer-external":
	case "external":
		if ext, ok := c.cache().(interface{ External() bool }); !ok || !ext.External() {
			c.set.Warnings = append(c.set.Warnings, Issue{Location: c.loc, Pos: a.Pos, Policy: el.Name,
				Message: "caching-type is external but no external cache is configured (cache.external.connectionString): the gateway's in-memory cache is used"})
		}
	default:
		return fmt.Errorf("caching-type must be internal, external or prefer-external, found %q", a.Value)
	}
	return nil
}

// requiredText compiles a required attribute that may be an expression.
func cacheRequiredText(el *policyxml.Element, name string) (text, error) {
	if _, err := required(el, name); err != nil {
		return text{}, err
	}
	return attrText(el, name, "")
}

// cacheFlag is a true/false attribute that may be an expression.
type cacheFlag struct {
	name string
	t    text
	lit  bool
}

func cacheBool(el *policyxml.Element, name string, def bool) (cacheFlag, error) {
	a, ok := el.Attr(name)
	if !ok || !a.Expr {
		b, err := boolAttr(el, name, def)
		return cacheFlag{name: name, lit: b}, err
	}
	t, err := compileText(a.Value, true, a.Pos)
	return cacheFlag{name: name, t: t}, err
}

func (b *cacheFlag) eval(r *Request, m *meta) (bool, error) {
	if !b.t.isExpr() {
		return b.lit, nil
	}
	v, err := b.t.value(r, m)
	if err != nil {
		return false, err
	}
	switch v.Kind() {
	case expr.KBool:
		return v.Bool(), nil
	case expr.KString:
		switch strings.ToLower(strings.TrimSpace(v.Str())) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, m.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. The value of "+b.name+" is not a boolean.", 500)
}

// maxCacheSeconds caps durations (about 31 years) so they fit a
// time.Duration.
const maxCacheSeconds = 1e9

// durationText is a duration attribute in seconds that may be an
// expression; a literal is checked at load.
func cacheDurationText(el *policyxml.Element, name string) (text, error) {
	t, err := cacheRequiredText(el, name)
	if err != nil || t.isExpr() {
		return t, err
	}
	if _, ok := cacheSeconds(t.lit); !ok {
		return t, fmt.Errorf("attribute %s must be a number of seconds, found %q", name, t.lit)
	}
	return t, nil
}

func cacheSeconds(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, false
	}
	return f, true
}

// ttl evaluates a duration; 0 means do not store.
func cacheTTL(t *text, r *Request, m *meta) (time.Duration, error) {
	var secs float64
	if !t.isExpr() {
		secs, _ = cacheSeconds(t.lit)
	} else {
		v, err := t.value(r, m)
		if err != nil {
			return 0, err
		}
		switch v.Kind() {
		case expr.KInt, expr.KDouble:
			secs = v.Float()
		case expr.KTimeSpan:
			secs = time.Duration(v.Int()).Seconds()
		default:
			f, ok := cacheSeconds(v.String())
			if !ok {
				return 0, m.fail("ExpressionValueEvaluationFailure", "Expression evaluation failed. The duration is not a number of seconds.", 500)
			}
			secs = f
		}
	}
	if math.IsNaN(secs) || secs <= 0 {
		return 0, nil
	}
	return time.Duration(min(secs, maxCacheSeconds) * float64(time.Second)), nil
}

// --- typed values ----------------------------------------------------------

// cacheValueFormat is the first byte of an encoded value; the second is its
// kind tag, the rest its payload:
//
//	n null; b bool ('0'|'1'); i int (decimal); d double (shortest
//	round-trip text); c char (decimal code point); s string; y byte[];
//	t DateTime and p TimeSpan (decimal nanoseconds); o JObject and a
//	JArray (JSON text); A string array (JSON array of strings).
//
// Other values (enums, dictionaries, host objects) are stored as their
// string.
const cacheValueFormat = 1

func cacheEncodeValue(v expr.Value) []byte {
	b := []byte{cacheValueFormat, 's'}
	switch v.Kind() {
	case expr.KNull:
		b[1] = 'n'
	case expr.KBool:
		b[1] = 'b'
		if v.Bool() {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	case expr.KInt:
		b[1] = 'i'
		b = strconv.AppendInt(b, v.Int(), 10)
	case expr.KDouble:
		b[1] = 'd'
		b = strconv.AppendFloat(b, v.Float(), 'g', -1, 64)
	case expr.KChar:
		b[1] = 'c'
		b = strconv.AppendInt(b, v.Int(), 10)
	case expr.KString:
		b = append(b, v.Str()...)
	case expr.KBytes:
		b[1] = 'y'
		b = append(b, v.Str()...)
	case expr.KDateTime:
		b[1] = 't'
		b = strconv.AppendInt(b, v.Time().UnixNano(), 10)
	case expr.KTimeSpan:
		b[1] = 'p'
		b = strconv.AppendInt(b, v.Int(), 10)
	case expr.KJObject:
		b[1] = 'o'
		b = append(b, v.String()...)
	case expr.KJArray:
		b[1] = 'a'
		b = append(b, v.String()...)
	case expr.KArray:
		if ss, ok := cacheStringItems(v); ok {
			if j, err := json.Marshal(ss); err == nil {
				b[1] = 'A'
				b = append(b, j...)
				break
			}
		}
		b = append(b, v.String()...)
	default:
		b = append(b, v.String()...)
	}
	return b
}

func cacheStringItems(v expr.Value) ([]string, bool) {
	l := v.List()
	if l == nil {
		return nil, false
	}
	ss := make([]string, 0, len(l.Items))
	for _, it := range l.Items {
		if it.Kind() != expr.KString {
			return nil, false
		}
		ss = append(ss, it.Str())
	}
	return ss, true
}

// cacheDecodeValue restores an encoded value; false for data it cannot read
// (another format), which callers treat as a miss.
func cacheDecodeValue(b []byte) (expr.Value, bool) {
	if len(b) < 2 || b[0] != cacheValueFormat {
		return expr.Value{}, false
	}
	p := string(b[2:])
	var err error
	var n int64
	switch b[1] {
	case 'n':
		return expr.Null, true
	case 'b':
		return expr.Bool(p == "1"), p == "0" || p == "1"
	case 'i', 'c', 't', 'p':
		n, err = strconv.ParseInt(p, 10, 64)
		if err != nil {
			return expr.Value{}, false
		}
		switch b[1] {
		case 'i':
			return expr.Int(n), true
		case 'c':
			return expr.Char(rune(n)), true
		case 't':
			return expr.Time(time.Unix(0, n).UTC()), true
		}
		return expr.Duration(time.Duration(n)), true
	case 'd':
		f, err := strconv.ParseFloat(p, 64)
		return expr.Double(f), err == nil
	case 's':
		return expr.String(p), true
	case 'y':
		return expr.Bytes(b[2:]), true
	case 'o', 'a':
		v, err := expr.ParseJSON(b[2:])
		if err != nil || (b[1] == 'o') != (v.Kind() == expr.KJObject) || (b[1] == 'a') != (v.Kind() == expr.KJArray) {
			return expr.Value{}, false
		}
		return v, true
	case 'A':
		var ss []string
		if json.Unmarshal(b[2:], &ss) != nil {
			return expr.Value{}, false
		}
		return expr.StringArray(ss), true
	}
	return expr.Value{}, false
}

// --- cache-lookup-value ------------------------------------------------------

type cacheLookupValue struct {
	meta
	store  Cache
	key    text
	def    text
	hasDef bool
	name   string
}

func compileCacheLookupValue(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	s := &cacheLookupValue{meta: m, store: c.cache()}
	var err error
	if s.key, err = cacheRequiredText(el, "key"); err != nil {
		return nil, err
	}
	a, ok := el.Attr("variable-name")
	if !ok || strings.TrimSpace(a.Value) == "" {
		return nil, fmt.Errorf("attribute variable-name is required")
	}
	if a.Expr {
		return nil, fmt.Errorf("attribute variable-name cannot be a policy expression")
	}
	s.name = strings.TrimSpace(a.Value)
	if _, s.hasDef = el.Attr("default-value"); s.hasDef {
		if s.def, err = attrText(el, "default-value", ""); err != nil {
			return nil, err
		}
	}
	return s, c.cachingType(el)
}

// Exec sets the variable to the cached value, of the kind it was stored
// with; on a miss to default-value, or leaves it unset without one.
func (s *cacheLookupValue) Exec(r *Request) error {
	key, err := s.key.str(r, &s.meta)
	if err != nil {
		return err
	}
	if data, ok, _ := s.store.Get(cacheValuePrefix + key); ok {
		if v, ok := cacheDecodeValue(data); ok {
			exprVars{r}.Set(s.name, v)
			return nil
		}
	}
	if !s.hasDef {
		return nil
	}
	v, err := s.def.value(r, &s.meta)
	if err != nil {
		return err
	}
	exprVars{r}.Set(s.name, v)
	return nil
}

// --- cache-store-value -------------------------------------------------------

type cacheStoreValue struct {
	meta
	store    Cache
	key      text
	value    text
	duration text
}

func compileCacheStoreValue(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	s := &cacheStoreValue{meta: m, store: c.cache()}
	var err error
	if s.key, err = cacheRequiredText(el, "key"); err != nil {
		return nil, err
	}
	if _, ok := el.Attr("value"); !ok {
		return nil, fmt.Errorf("attribute value is required")
	}
	if s.value, err = attrText(el, "value", ""); err != nil {
		return nil, err
	}
	if s.duration, err = cacheDurationText(el, "duration"); err != nil {
		return nil, err
	}
	return s, c.cachingType(el)
}

// Exec stores the value synchronously (API Management stores
// asynchronously; a later lookup in the same request already sees it
// here). A store error drops the value.
func (s *cacheStoreValue) Exec(r *Request) error {
	key, err := s.key.str(r, &s.meta)
	if err != nil {
		return err
	}
	v, err := s.value.value(r, &s.meta)
	if err != nil {
		return err
	}
	d, err := cacheTTL(&s.duration, r, &s.meta)
	if err != nil || d <= 0 {
		return err
	}
	_ = s.store.Set(cacheValuePrefix+key, cacheEncodeValue(v), d)
	return nil
}

// --- cache-remove-value ------------------------------------------------------

type cacheRemoveValue struct {
	meta
	store Cache
	key   text
}

func compileCacheRemoveValue(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	s := &cacheRemoveValue{meta: m, store: c.cache()}
	var err error
	if s.key, err = cacheRequiredText(el, "key"); err != nil {
		return nil, err
	}
	return s, c.cachingType(el)
}

func (s *cacheRemoveValue) Exec(r *Request) error {
	key, err := s.key.str(r, &s.meta)
	if err != nil {
		return err
	}
	_ = s.store.Delete(cacheValuePrefix + key)
	return nil
}

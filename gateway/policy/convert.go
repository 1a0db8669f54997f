package policy

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// maxConvertBody bounds the bodies json-to-xml and xml-to-json convert.
// A larger body, like a body that does not parse, passes through
// unchanged (body and Content-Type): converting it would build a tree
// several times its size per request.
const maxConvertBody = 8 << 20

// maxConvertDepth bounds nesting; deeper documents pass through unchanged.
const maxConvertDepth = 512

// --- shared: which body, which content type ----------------------------------

// convertBody returns the body the policy converts and its Content-Type:
// the request's in inbound, the response's in outbound and on-error.
func convertBody(r *Request) ([]byte, string, error) {
	if r.section == Outbound || r.section == OnError {
		return r.Ctx.Response.Body(), string(r.Ctx.Response.Header.ContentType()), nil
	}
	b, err := r.RequestBody()
	return b, string(r.Ctx.Request.Header.ContentType()), err
}

func setConverted(r *Request, body []byte, contentType string) {
	if r.section == Outbound || r.section == OnError {
		r.Ctx.Response.SetBodyRaw(body)
		r.Ctx.Response.Header.SetContentType(contentType)
		return
	}
	r.Ctx.Request.SetBodyRaw(body)
	r.Ctx.Request.Header.SetContentType(contentType)
}

// mediaIs reports whether a Content-Type names kind ("json" or "xml"):
// application/kind, text/kind or a +kind suffix.
func mediaIs(contentType, kind string) bool {
	mt := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	return mt == "application/"+kind || mt == "text/"+kind || strings.HasSuffix(mt, "+"+kind)
}

// acceptAllows reports whether the request's Accept header lets the client
// receive kind. The reference says the conversion applies "if JSON (XML) is
// requested in request Accept header"; inferred: a missing Accept, or a
// wildcard range (*/*, application/*, text/*), counts as a request, so
// the default consider-accept-header="true" skips only clients that list
// other types alone.
func acceptAllows(r *Request, kind string) bool {
	acc := string(r.Ctx.Request.Header.Peek("Accept"))
	if strings.TrimSpace(acc) == "" {
		return true
	}
	for _, part := range strings.Split(acc, ",") {
		mt := strings.ToLower(strings.TrimSpace(part))
		if i := strings.IndexByte(mt, ';'); i >= 0 {
			mt = strings.TrimSpace(mt[:i])
		}
		if mt == "*/*" || mt == "application/*" || mt == "text/*" || mediaIs(mt, kind) {
			return true
		}
	}
	return false
}

// choice is an attribute with a fixed set of values that may also be a
// policy expression.
type choice struct {
	name string
	t    text
}

func compileChoice(el *policyxml.Element, name, def string, required bool, allowed ...string) (choice, error) {
	a, ok := el.Attr(name)
	if !ok && required {
		return choice{}, fmt.Errorf("attribute %s is required (%s)", name, strings.Join(allowed, " or "))
	}
	t, err := attrText(el, name, def)
	if err != nil {
		return choice{}, err
	}
	if ok && !a.Expr {
		t.lit = strings.TrimSpace(t.lit)
		if !contains(allowed, t.lit) {
			return choice{}, fmt.Errorf("attribute %s must be %s, found %q", name, strings.Join(allowed, " or "), a.Value)
		}
	}
	return choice{name: name, t: t}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// eval returns the value; an expression giving a value outside allowed
// fails the request, as a malformed attribute would.
func (c *choice) eval(r *Request, m *meta, allowed ...string) (string, error) {
	v, err := c.t.str(r, m)
	if err != nil {
		return "", err
	}
	v = strings.TrimSpace(v)
	if !contains(allowed, v) {
		return "", m.fail("ExpressionValueEvaluationFailure", fmt.Sprintf("Expression evaluation failed. %s must be %s, found %q.", c.name, strings.Join(allowed, " or "), v), 500)
	}
	return v, nil
}

// --- json-to-xml ------------------------------------------------------------------

type jsonToXML struct {
	meta
	apply, accept      choice
	parseDate          bool
	sep, prefix, attrs text
}

func compileJSONToXML(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	s := &jsonToXML{meta: m}
	var err error
	if s.apply, err = compileChoice(el, "apply", "", true, "always", "content-type-json"); err != nil {
		return nil, err
	}
	if s.accept, err = compileChoice(el, "consider-accept-header", "true", false, "true", "false"); err != nil {
		return nil, err
	}
	if a, ok := el.Attr("parse-date"); ok && a.Expr {
		return nil, fmt.Errorf("attribute parse-date cannot be a policy expression")
	}
	if s.parseDate, err = boolAttr(el, "parse-date", true); err != nil {
		return nil, err
	}
	if s.sep, err = attrText(el, "namespace-separator", "_"); err != nil {
		return nil, err
	}
	if !s.sep.isExpr() && utf8.RuneCountInString(s.sep.lit) != 1 {
		return nil, fmt.Errorf("attribute namespace-separator must be one character, found %q", s.sep.lit)
	}
	if s.prefix, err = attrText(el, "namespace-prefix", ""); err != nil {
		return nil, err
	}
	if s.attrs, err = attrText(el, "attribute-block-name", ""); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *jsonToXML) Exec(r *Request) error {
	apply, err := s.apply.eval(r, &s.meta, "always", "content-type-json")
	if err != nil {
		return err
	}
	accept, err := s.accept.eval(r, &s.meta, "true", "false")
	if err != nil {
		return err
	}
	if accept == "true" && !acceptAllows(r, "xml") {
		return nil
	}
	opts := j2xOptions{parseDate: s.parseDate}
	sep, err := s.sep.str(r, &s.meta)
	if err != nil {
		return err
	}
	opts.sep = sep
	if opts.prefix, err = s.prefix.str(r, &s.meta); err != nil {
		return err
	}
	if opts.attrs, err = s.attrs.str(r, &s.meta); err != nil {
		return err
	}
	body, ct, err := convertBody(r)
	if err != nil {
		return err
	}
	if apply == "content-type-json" && !mediaIs(ct, "json") {
		return nil
	}
	if len(body) == 0 || len(body) > maxConvertBody {
		return nil
	}
	out, ok := jsonToXMLBytes(body, opts)
	if !ok {
		return nil
	}
	setConverted(r, out, "application/xml")
	return nil
}

type j2xOptions struct {
	parseDate          bool
	sep, prefix, attrs string
}

// jnode is a JSON value with object members in document order.
type jnode struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	s    string
	keys []string
	vals []*jnode
}

func parseJSONOrdered(b []byte) (*jnode, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := readJNode(dec, 0)
	if err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return n, true
}

func readJNode(dec *json.Decoder, depth int) (*jnode, error) {
	if depth > maxConvertDepth {
		return nil, fmt.Errorf("too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			n := &jnode{kind: 'o'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				val, err := readJNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, val)
			}
			_, err := dec.Token()
			return n, err
		case '[':
			n := &jnode{kind: 'a'}
			for dec.More() {
				val, err := readJNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, val)
			}
			_, err := dec.Token()
			return n, err
		}
		return nil, fmt.Errorf("unexpected %v", v)
	case string:
		return &jnode{kind: 's', s: v}, nil
	case json.Number:
		return &jnode{kind: 'n', s: v.String()}, nil
	case bool:
		return &jnode{kind: 'b', s: strconv.FormatBool(v)}, nil
	case nil:
		return &jnode{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected token")
}

// jsonToXMLBytes converts a JSON document. The shape follows the
// json-to-xml reference example (json-to-xml-policy.md): an object with a
// single member becomes that member's element as the document root;
// otherwise (several members, an array, a scalar) the root is <Document>
// (inferred, as observed of API Management and Json.NET's converter). An
// array member becomes repeated elements; null an empty element; names
// that are not XML names are encoded as XmlConvert.EncodeName does
// (_xHHHH_). With namespace-prefix set, members named prefix or
// prefix<sep>p become xmlns / xmlns:p declarations, and a name p<sep>local
// with p declared becomes p:local. Members of the attribute-block-name
// object become attributes.
func jsonToXMLBytes(body []byte, o j2xOptions) ([]byte, bool) {
	root, ok := parseJSONOrdered(body)
	if !ok {
		return nil, false
	}
	w := &xmlWriter{o: o}
	if root.kind == 'o' && len(root.keys) == 1 && root.vals[0].kind != 'a' && !w.special(root.keys[0]) {
		w.member(root.keys[0], root.vals[0], nil)
	} else if root.kind == 'a' {
		w.b.WriteString("<Document>")
		w.member("Array", root, nil)
		w.b.WriteString("</Document>")
	} else {
		w.element("Document", root, nil)
	}
	return w.b.Bytes(), true
}

type xmlWriter struct {
	o j2xOptions
	b bytes.Buffer
}

// special reports whether a member name is a namespace declaration or the
// attribute block rather than content.
func (w *xmlWriter) special(k string) bool {
	return (w.o.attrs != "" && k == w.o.attrs) || w.nsDecl(k) != ""
}

// nsDecl returns the xmlns attribute name a member declares, "" for none.
func (w *xmlWriter) nsDecl(k string) string {
	p := w.o.prefix
	if p == "" {
		return ""
	}
	if k == p {
		return "xmlns"
	}
	if w.o.sep != "" && strings.HasPrefix(k, p+w.o.sep) && len(k) > len(p)+len(w.o.sep) {
		return "xmlns:" + encodeXMLName(k[len(p)+len(w.o.sep):])
	}
	return ""
}

// member writes member k: repeated elements for an array.
func (w *xmlWriter) member(k string, v *jnode, ns []string) {
	if v.kind == 'a' {
		for _, item := range v.vals {
			w.member(k, item, ns)
		}
		return
	}
	w.element(k, v, ns)
}

// element writes <k>v</k>; ns lists the prefixes declared in scope.
func (w *xmlWriter) element(k string, v *jnode, ns []string) {
	var attrs [][2]string
	if v.kind == 'o' {
		for i, key := range v.keys {
			if d := w.nsDecl(key); d != "" && v.vals[i].kind != 'o' && v.vals[i].kind != 'a' {
				attrs = append(attrs, [2]string{d, w.scalar(v.vals[i])})
				if d != "xmlns" {
					ns = append(ns, d[len("xmlns:"):])
				}
			}
		}
		for i, key := range v.keys {
			if w.o.attrs != "" && key == w.o.attrs && v.vals[i].kind == 'o' {
				blk := v.vals[i]
				for j, an := range blk.keys {
					if blk.vals[j].kind == 'o' || blk.vals[j].kind == 'a' {
						continue
					}
					attrs = append(attrs, [2]string{w.name(an, ns), w.scalar(blk.vals[j])})
				}
			}
		}
	}
	name := w.name(k, ns)
	w.b.WriteByte('<')
	w.b.WriteString(name)
	for _, a := range attrs {
		w.b.WriteByte(' ')
		w.b.WriteString(a[0])
		w.b.WriteString(`="`)
		xmlEscape(&w.b, a[1], true)
		w.b.WriteByte('"')
	}
	switch v.kind {
	case 'z':
		w.b.WriteString(" />")
		return
	case 'o':
		var content bool
		for i, key := range v.keys {
			if w.special(key) {
				continue
			}
			if !content {
				w.b.WriteByte('>')
				content = true
			}
			w.member(key, v.vals[i], ns)
		}
		if !content {
			w.b.WriteString(" />")
			return
		}
	case 'a': // an array inside an array: one element holding its items
		w.b.WriteByte('>')
		for _, item := range v.vals {
			w.member(k, item, ns)
		}
	default:
		w.b.WriteByte('>')
		xmlEscape(&w.b, w.scalar(v), false)
	}
	w.b.WriteString("</")
	w.b.WriteString(name)
	w.b.WriteByte('>')
}

func (w *xmlWriter) scalar(v *jnode) string {
	if v.kind == 's' && w.o.parseDate {
		if d, ok := normalizeDate(v.s); ok {
			return d
		}
	}
	return v.s
}

// normalizeDate reformats an ISO 8601 date-time the way Json.NET's date
// parsing followed by XmlConvert round-trips it (inferred): fraction
// without trailing zeros, "Z" for UTC, the offset kept.
func normalizeDate(s string) (string, bool) {
	if len(s) < 19 || s[4] != '-' || s[10] != 'T' {
		return "", false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			if layout == time.RFC3339Nano {
				return t.Format(time.RFC3339Nano), true
			}
			return t.Format("2006-01-02T15:04:05.999999999"), true
		}
	}
	return "", false
}

// name maps a member name to an element or attribute name.
func (w *xmlWriter) name(k string, ns []string) string {
	if w.o.sep != "" {
		if i := strings.Index(k, w.o.sep); i > 0 && contains(ns, k[:i]) {
			return encodeXMLName(k[:i]) + ":" + encodeXMLName(k[i+len(w.o.sep):])
		}
	}
	return encodeXMLName(k)
}

// encodeXMLName encodes characters not allowed in an XML name (':'
// included) as _xHHHH_, as .NET's XmlConvert.EncodeName does.
func encodeXMLName(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	first := true
	for _, r := range s {
		ok := r == '_' || unicode.IsLetter(r)
		if !first {
			ok = ok || r == '-' || r == '.' || unicode.IsDigit(r)
		}
		if ok {
			b.WriteRune(r)
		} else if r > 0xFFFF {
			fmt.Fprintf(&b, "_x%08X_", r)
		} else {
			fmt.Fprintf(&b, "_x%04X_", r)
		}
		first = false
	}
	return b.String()
}

func xmlEscape(b *bytes.Buffer, s string, attr bool) {
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			if attr {
				b.WriteString("&quot;")
			} else {
				b.WriteRune(r)
			}
		case '\r':
			b.WriteString("&#xD;")
		case '\t', '\n':
			if attr {
				fmt.Fprintf(b, "&#x%X;", r)
			} else {
				b.WriteRune(r)
			}
		default:
			if r < 0x20 || r == utf8.RuneError {
				continue // not representable in XML 1.0
			}
			b.WriteRune(r)
		}
	}
}

// --- xml-to-json ------------------------------------------------------------------

type xmlToJSON struct {
	meta
	kind, apply, accept, always choice
}

var (
	xmlKinds  = []string{"javascript-friendly", "direct"}
	xmlApply  = []string{"always", "content-type-xml"}
	trueFalse = []string{"true", "false"}
)

func compileXMLToJSON(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	s := &xmlToJSON{meta: m}
	var err error
	if s.kind, err = compileChoice(el, "kind", "", true, xmlKinds...); err != nil {
		return nil, err
	}
	if s.apply, err = compileChoice(el, "apply", "", true, xmlApply...); err != nil {
		return nil, err
	}
	if s.accept, err = compileChoice(el, "consider-accept-header", "true", false, trueFalse...); err != nil {
		return nil, err
	}
	name := "always-array-child-elements"
	if _, ok := el.Attr(name); !ok {
		if _, old := el.Attr("always-array-children"); old {
			name = "always-array-children" // the spelling of an older reference page
		}
	}
	if s.always, err = compileChoice(el, name, "false", false, trueFalse...); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *xmlToJSON) Exec(r *Request) error {
	kind, err := s.kind.eval(r, &s.meta, xmlKinds...)
	if err != nil {
		return err
	}
	apply, err := s.apply.eval(r, &s.meta, xmlApply...)
	if err != nil {
		return err
	}
	accept, err := s.accept.eval(r, &s.meta, trueFalse...)
	if err != nil {
		return err
	}
	always, err := s.always.eval(r, &s.meta, trueFalse...)
	if err != nil {
		return err
	}
	if accept == "true" && !acceptAllows(r, "json") {
		return nil
	}
	body, ct, err := convertBody(r)
	if err != nil {
		return err
	}
	if apply == "content-type-xml" && !mediaIs(ct, "xml") {
		return nil
	}
	if len(body) == 0 || len(body) > maxConvertBody {
		return nil
	}
	out, ok := xmlToJSONBytes(body, kind == "direct", always == "true")
	if !ok {
		return nil
	}
	setConverted(r, out, "application/json")
	return nil
}

// xnode is a parsed XML element.
type xnode struct {
	name     xml.Name // Space is the prefix (raw tokens)
	attrs    []xml.Attr
	children []*xnode
	text     strings.Builder
}

// xmlToJSONBytes converts an XML document.
//
// direct (the shape observed of API Management, inferred from third-party
// examples, and Json.NET's SerializeXmlNode): the XML declaration's
// pseudo-attributes become top-level members ("version", "encoding",
// "standalone"); names keep their prefix with ':' written as '$'
// ("soap$Envelope"); attributes, xmlns declarations included, become
// "@name" members; an element with only text is a string, an empty one
// null, text beside attributes or children is "#text"; repeated child
// names become an array at the first one's place.
//
// javascript-friendly (inferred): the same, without the declaration,
// namespace declarations and prefixes: local names only.
//
// alwaysArray makes every child element an array, even a single one.
// Values stay strings: XML has no types.
func xmlToJSONBytes(body []byte, direct, alwaysArray bool) ([]byte, bool) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var decl []xml.Attr
	var stack []*xnode
	var root *xnode
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target == "xml" && root == nil {
				decl = parseDecl(string(t.Inst))
			}
		case xml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, false // a second root
			}
			if len(stack) >= maxConvertDepth {
				return nil, false
			}
			n := &xnode{name: t.Name, attrs: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != t.Name {
				return nil, false
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, false
			}
		}
	}
	if root == nil || len(stack) != 0 {
		return nil, false
	}
	c := &x2j{direct: direct, always: alwaysArray}
	c.b.WriteByte('{')
	if direct {
		for _, a := range decl {
			writeJSONString(&c.b, a.Name.Local)
			c.b.WriteByte(':')
			writeJSONString(&c.b, a.Value)
			c.b.WriteByte(',')
		}
	}
	writeJSONString(&c.b, c.name(root.name))
	c.b.WriteByte(':')
	c.value(root)
	c.b.WriteByte('}')
	return c.b.Bytes(), true
}

func parseDecl(inst string) []xml.Attr {
	var out []xml.Attr
	for _, key := range []string{"version", "encoding", "standalone"} {
		i := strings.Index(inst, key)
		if i < 0 {
			continue
		}
		rest := strings.TrimLeft(inst[i+len(key):], " \t\r\n")
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t\r\n")
		if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
			continue
		}
		if j := strings.IndexByte(rest[1:], rest[0]); j >= 0 {
			out = append(out, xml.Attr{Name: xml.Name{Local: key}, Value: rest[1 : 1+j]})
		}
	}
	return out
}

type x2j struct {
	direct, always bool
	b              bytes.Buffer
}

func (c *x2j) name(n xml.Name) string {
	if n.Space == "" || !c.direct {
		return n.Local
	}
	return n.Space + "$" + n.Local
}

func (c *x2j) keepAttr(a xml.Attr) bool {
	if c.direct {
		return true
	}
	return a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns")
}

func (c *x2j) value(n *xnode) {
	var attrs []xml.Attr
	for _, a := range n.attrs {
		if c.keepAttr(a) {
			attrs = append(attrs, a)
		}
	}
	text := n.text.String()
	if strings.TrimSpace(text) == "" {
		text = ""
	}
	if len(attrs) == 0 && len(n.children) == 0 {
		if text == "" {
			c.b.WriteString("null")
		} else {
			writeJSONString(&c.b, text)
		}
		return
	}
	c.b.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			c.b.WriteByte(',')
		}
		first = false
	}
	for _, a := range attrs {
		sep()
		writeJSONString(&c.b, "@"+c.name(a.Name))
		c.b.WriteByte(':')
		writeJSONString(&c.b, a.Value)
	}
	if text != "" {
		sep()
		writeJSONString(&c.b, "#text")
		c.b.WriteByte(':')
		writeJSONString(&c.b, text)
	}
	done := map[string]bool{}
	for i, ch := range n.children {
		k := c.name(ch.name)
		if done[k] {
			continue
		}
		done[k] = true
		var group []*xnode
		for _, other := range n.children[i:] {
			if c.name(other.name) == k {
				group = append(group, other)
			}
		}
		sep()
		writeJSONString(&c.b, k)
		c.b.WriteByte(':')
		if len(group) == 1 && !c.always {
			c.value(ch)
			continue
		}
		c.b.WriteByte('[')
		for j, g := range group {
			if j > 0 {
				c.b.WriteByte(',')
			}
			c.value(g)
		}
		c.b.WriteByte(']')
	}
	c.b.WriteByte('}')
}

// writeJSONString writes s as a JSON string, without escaping <, > and &.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode's newline
}

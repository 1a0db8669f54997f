package policy

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// --- authentication-basic ---------------------------------------------------------

type authBasic struct {
	meta
	username, password text
}

func compileAuthBasic(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	if _, err := required(el, "username"); err != nil {
		return nil, err
	}
	if _, ok := el.Attr("password"); !ok {
		return nil, fmt.Errorf("attribute password is required")
	}
	user, err := attrText(el, "username", "")
	if err != nil {
		return nil, err
	}
	pass, err := attrText(el, "password", "")
	if err != nil {
		return nil, err
	}
	return &authBasic{meta: m, username: user, password: pass}, nil
}

// Exec sets the backend request's Authorization header. The credentials
// usually come from secret named values; they are never logged.
func (s *authBasic) Exec(r *Request) error {
	user, err := s.username.str(r, &s.meta)
	if err != nil {
		return err
	}
	pass, err := s.password.str(r, &s.meta)
	if err != nil {
		return err
	}
	raw := user + ":" + pass
	r.Ctx.Request.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(raw)))
	return nil
}

// --- find-and-replace -------------------------------------------------------------

type findReplace struct {
	meta
	from, to text
}

func compileFindReplace(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	if _, ok := el.Attr("from"); !ok {
		return nil, fmt.Errorf("attribute from is required")
	}
	if _, ok := el.Attr("to"); !ok {
		return nil, fmt.Errorf("attribute to is required")
	}
	from, err := attrText(el, "from", "")
	if err != nil {
		return nil, err
	}
	to, err := attrText(el, "to", "")
	if err != nil {
		return nil, err
	}
	if !from.isExpr() && from.lit == "" {
		return nil, fmt.Errorf("attribute from cannot be empty")
	}
	return &findReplace{meta: m, from: from, to: to}, nil
}

// Exec replaces every occurrence in the request body (inbound, backend) or
// the response body (outbound, on-error). The body is read whole, so this
// policy turns streaming off for the message it edits, as in API
// Management.
func (s *findReplace) Exec(r *Request) error {
	from, err := s.from.str(r, &s.meta)
	if err != nil {
		return err
	}
	if from == "" {
		return nil
	}
	to, err := s.to.str(r, &s.meta)
	if err != nil {
		return err
	}
	if r.section == Outbound || r.section == OnError {
		body := r.Ctx.Response.Body()
		r.Ctx.Response.SetBody(bytes.ReplaceAll(body, []byte(from), []byte(to)))
		return nil
	}
	body, err := r.RequestBody()
	if err != nil {
		return err
	}
	r.Ctx.Request.SetBody(bytes.ReplaceAll(body, []byte(from), []byte(to)))
	return nil
}

// Package policy compiles API Management policy documents and runs them.
//
// Compilation happens when a configuration snapshot is loaded: named
// values are substituted, the XML is parsed once (leniently, see
// policyxml), every element is checked against the section it sits in and
// compiled into a Step. Requests only execute Steps.
//
// Scopes compose as in API Management: global, product (only when the
// request has a product context), API, operation. A <base /> element in a
// section stands for the enclosing scope's section at that point; a
// section without <base /> replaces it; a section left out inherits it.
//
// Policies this gateway does not run are skipped with a load-time warning
// naming the policy and its scope (what Microsoft's self-hosted gateway
// does); with Strict set, such a document is rejected instead.
package policy

import (
	"fmt"
	"strings"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// Section is one of a document's four sections.
type Section uint8

// The sections, in execution order.
const (
	Inbound Section = iota
	Backend
	Outbound
	OnError
	numSections
)

var sectionNames = [numSections]string{"inbound", "backend", "outbound", "on-error"}

func (s Section) String() string { return sectionNames[s] }

// Scope says where a document is attached.
type Scope uint8

// Scopes, outermost first.
const (
	ScopeGlobal Scope = iota
	ScopeProduct
	ScopeAPI
	ScopeOperation
	ScopeFragment
)

var scopeNames = [...]string{"global", "product", "api", "operation", "fragment"}

func (s Scope) String() string { return scopeNames[s] }

// Location names a document for messages: "api echo", "operation echo/get".
type Location struct {
	Scope Scope
	Name  string
}

func (l Location) String() string {
	if l.Name == "" {
		return l.Scope.String()
	}
	return l.Scope.String() + " " + l.Name
}

// Step is one compiled policy statement.
type Step interface {
	// Exec runs the policy. A returned *Error sends the request to
	// on-error; errStop ends the pipeline (return-response).
	Exec(r *Request) error
}

// item is a section entry: a Step, or a <base /> (the enclosing scope's
// section is spliced in there when documents are composed).
type item struct {
	step Step
	base bool
}

// Document is a compiled policy document.
type Document struct {
	Location Location
	// sections[s] is nil when the section is absent (inherit), and an
	// empty non-nil slice when present but empty.
	sections [numSections][]item
	present  [numSections]bool
}

// Issue is a load-time finding about a policy document.
type Issue struct {
	Location Location
	Pos      policyxml.Pos
	// Policy is the element name, when the issue is about one policy.
	Policy  string
	Message string
}

func (i Issue) String() string {
	var b strings.Builder
	b.WriteString(i.Location.String())
	if i.Pos.Line > 0 {
		fmt.Fprintf(&b, " (line %d, column %d)", i.Pos.Line, i.Pos.Col)
	}
	if i.Policy != "" {
		b.WriteString(": <" + i.Policy + ">")
	}
	b.WriteString(": " + i.Message)
	return b.String()
}

// CompileError is a document that cannot be used, with every problem.
type CompileError struct {
	Issues []Issue
}

func (e *CompileError) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = is.String()
	}
	return strings.Join(parts, "; ")
}

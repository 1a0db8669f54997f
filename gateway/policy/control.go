package policy

import (
	"fmt"
	"strconv"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/policyxml"
)

// --- choose -----------------------------------------------------------------

type chooseBranch struct {
	cond  text
	steps []Step
}

type choose struct {
	meta
	whens     []chooseBranch
	otherwise []Step
}

func compileChoose(c *compiler, el *policyxml.Element, m meta) (Step, error) {
	ch := &choose{meta: m}
	seenOtherwise := false
	for i, child := range el.Children {
		switch child.Name {
		case "when":
			if seenOtherwise {
				return nil, fmt.Errorf("<when> cannot follow <otherwise>")
			}
			if _, ok := child.Attr("condition"); !ok {
				return nil, fmt.Errorf("<when> needs a condition attribute")
			}
			cond, err := attrText(child, "condition", "")
			if err != nil {
				return nil, err
			}
			if !cond.isExpr() && cond.lit != "true" && cond.lit != "false" {
				return nil, fmt.Errorf("<when> condition %q must be a policy expression", cond.lit)
			}
			b := chooseBranch{cond: cond}
			path := m.path + `\when[` + strconv.Itoa(len(ch.whens)+1) + `]`
			for _, st := range child.Children {
				b.steps = append(b.steps, c.statement(st, path)...)
			}
			ch.whens = append(ch.whens, b)
		case "otherwise":
			if seenOtherwise {
				return nil, fmt.Errorf("<otherwise> appears twice")
			}
			seenOtherwise = true
			for _, st := range child.Children {
				ch.otherwise = append(ch.otherwise, c.statement(st, m.path+`\otherwise[1]`)...)
			}
		default:
			return nil, fmt.Errorf("<%s> (child %d) cannot be a child of <choose>: use <when> and <otherwise>", child.Name, i+1)
		}
	}
	if len(ch.whens) == 0 {
		return nil, fmt.Errorf("<choose> needs at least one <when>")
	}
	return ch, nil
}

func (s *choose) Exec(r *Request) error {
	for i := range s.whens {
		w := &s.whens[i]
		ok := w.cond.lit == "true"
		if w.cond.isExpr() {
			var err error
			if ok, err = w.cond.boolean(r, &s.meta); err != nil {
				return err
			}
		}
		if ok {
			return runSteps(r, w.steps)
		}
	}
	return runSteps(r, s.otherwise)
}

package expr

// The AST is produced by the parser with identifiers already resolved to
// local slots, the context object or static types, so evaluation never
// looks names up in maps.

type node interface{ position() int }

type base struct{ pos int }

func (b base) position() int { return b.pos }

// typeRef is a parsed C# type: name without namespace, generic arguments,
// array rank and nullability.
type typeRef struct {
	name     string
	args     []*typeRef
	array    bool
	nullable bool
}

func (t *typeRef) String() string {
	if t == nil {
		return "var"
	}
	s := t.name
	if len(t.args) > 0 {
		s += "<"
		for i, a := range t.args {
			if i > 0 {
				s += ","
			}
			s += a.String()
		}
		s += ">"
	}
	if t.nullable {
		s += "?"
	}
	if t.array {
		s += "[]"
	}
	return s
}

// Expressions.
type (
	litExpr struct {
		base
		val Value
	}
	interpExpr struct {
		base
		parts []interpSeg
	}
	localExpr struct {
		base
		slot int
		name string
	}
	contextExpr struct{ base }
	memberExpr  struct {
		base
		x        node
		name     string
		nullCond bool
	}
	indexExpr struct {
		base
		x        node
		args     []node
		nullCond bool
	}
	callExpr struct {
		base
		recv     node // nil for static calls
		name     string
		targs    []*typeRef
		args     []node
		names    []string // named arguments ("" when positional)
		outs     []int    // slot for out arguments, -1 otherwise
		nullCond bool
		static   staticFunc
		stType   string
	}
	staticMember struct {
		base
		typ, name string
		get       func(*evaluator) Value
	}
	unaryExpr struct {
		base
		op string
		x  node
	}
	binaryExpr struct {
		base
		op   string
		l, r node
	}
	condExpr struct {
		base
		c, a, b node
	}
	castExpr struct {
		base
		typ *typeRef
		x   node
	}
	isExpr struct {
		base
		x    node
		typ  *typeRef
		slot int // pattern variable, -1 when absent
	}
	asExpr struct {
		base
		x   node
		typ *typeRef
	}
	lambdaExpr struct {
		base
		slots []int
		body  node
	}
	newExpr struct {
		base
		typ      *typeRef
		args     []node
		items    []node   // collection / array initializer
		keys     []node   // index or dictionary initializer keys (parallel to items)
		members  []string // object initializer member names (parallel to items)
		arrayLen node     // new T[n]
		anon     bool     // new { a = 1 }
	}
	assignExpr struct {
		base
		op     string // "=", "+=", ...
		target node
		value  node
	}
	incDecExpr struct {
		base
		op     string // "++" or "--"
		prefix bool
		target node
	}
	defaultExpr struct {
		base
		typ *typeRef
	}
	typeofExpr struct {
		base
		typ *typeRef
	}
)

type interpSeg struct {
	lit    string
	x      node
	format string
	align  int
}

// Statements.
type (
	blockStmt struct {
		base
		stmts []node
	}
	declStmt struct {
		base
		typ   *typeRef
		slots []int
		inits []node
	}
	exprStmt struct {
		base
		x node
	}
	ifStmt struct {
		base
		c          node
		then, els_ node
	}
	returnStmt struct {
		base
		x node
	}
	foreachStmt struct {
		base
		slot int
		coll node
		body node
	}
	forStmt struct {
		base
		init []node
		cond node
		iter []node
		body node
	}
	whileStmt struct {
		base
		c    node
		body node
		do   bool
	}
	breakStmt    struct{ base }
	continueStmt struct{ base }
	tryStmt      struct {
		base
		body      node
		catchSlot int
		catchBody node
		finally   node
	}
	throwStmt struct {
		base
		x node
	}
	switchStmt struct {
		base
		x     node
		cases []switchCase
	}
)

type switchCase struct {
	labels    []node
	isDefault bool
	body      []node
}

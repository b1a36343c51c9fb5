package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

// exprEnv is what an if: expression sees. Its shape is fixed at compile
// time, so that a typo (request.contry) or a type mistake (visitor.visits
// == "2") is an error when the rules load, not a rule that never fires.
type exprEnv struct {
	Profile exprProfile `expr:"profile"`
	Visitor exprVisitor `expr:"visitor"`
	Request exprRequest `expr:"request"`
}

// exprProfile is the visitor's profile as stored: its own segments, not the
// edge-computed ones.
type exprProfile struct {
	ID       string             `expr:"id"`
	Known    bool               `expr:"known"`
	Segments []string           `expr:"segments"`
	Stage    string             `expr:"stage"`
	Traits   map[string]any     `expr:"traits"`
	Scores   map[string]float64 `expr:"scores"`
}

// exprVisitor is the visitor as the rules see them: every segment, the
// effective stage, and the edge's view of the visit.
type exprVisitor struct {
	ID          string             `expr:"id"`
	Known       bool               `expr:"known"`
	Segments    []string           `expr:"segments"`
	Stage       string             `expr:"stage"`
	Visits      int                `expr:"visits"`
	NewVisitor  bool               `expr:"new_visitor"`
	Engagement  float64            `expr:"engagement"`
	Interests   map[string]float64 `expr:"interests"`
	TopInterest string             `expr:"top_interest"`
	Persona     string             `expr:"persona"`
	Device      string             `expr:"device"`
}

// exprRequest is the request: query parameters by their first value,
// headers and cookies through functions (request.header("X-Plan")).
type exprRequest struct {
	Path         string              `expr:"path"`
	Query        map[string]string   `expr:"query"`
	Host         string              `expr:"host"`
	Referrer     string              `expr:"referrer"`
	ReferrerHost string              `expr:"referrer_host"`
	Country      string              `expr:"country"`
	Language     string              `expr:"language"`
	UserAgent    string              `expr:"user_agent"`
	Device       string              `expr:"device"`
	Time         time.Time           `expr:"time"`
	Header       func(string) string `expr:"header"`
	Cookie       func(string) string `expr:"cookie"`
}

// compileExpr compiles an if: expression against exprEnv, as a boolean.
// now() is left out: a rule that reads the clock would decide differently
// in "tailor explain" than in the proxy; use request.time.
func compileExpr(src string) (prog *vm.Program, err error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("empty expression")
	}
	defer func() {
		// The compiler is not expected to panic, but a rule file must
		// never take the process down.
		if v := recover(); v != nil {
			prog, err = nil, fmt.Errorf("%v", v)
		}
	}()
	return expr.Compile(src,
		expr.Env(&exprEnv{}),
		expr.AsBool(),
		expr.DisableBuiltin("now"),
		expr.Timezone("UTC"),
	)
}

// exprTest is the test of a compiled if: expression.
func exprTest(prog *vm.Program, src string) test {
	// Building request.query costs a map per request: only for the
	// expressions that may read it.
	query := strings.Contains(src, "query")
	falseReason := "if: " + truncate(src, 80) + " is false"
	return func(c *evalCtx) (bool, string) {
		out, err := c.machine.Run(prog, c.exprEnv(query))
		if err != nil {
			return false, "if: " + firstLine(err.Error())
		}
		if b, _ := out.(bool); b {
			return true, ""
		}
		return false, falseReason
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

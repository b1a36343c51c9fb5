package content

import (
	"errors"
	"fmt"
	"html"
	"html/template"
	"strings"
	"text/template/parse"
)

// The walks over a template's parse tree: checked and escaped before
// html/template sees it, read after it has escaped it.

// escapeText HTML-escapes every literal text node under n.
func escapeText(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			escapeText(c)
		}
	case *parse.TextNode:
		n.Text = []byte(html.EscapeString(string(n.Text)))
	case *parse.IfNode:
		escapeText(n.List)
		escapeText(n.ElseList)
	case *parse.RangeNode:
		escapeText(n.List)
		escapeText(n.ElseList)
	case *parse.WithNode:
		escapeText(n.List)
		escapeText(n.ElseList)
	}
}

// checkTree rejects {{range}} over a number: "{{range 1000000000}}" would
// spin on every request.
func checkTree(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkTree(c); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		if p := n.Pipe; p != nil && len(p.Cmds) > 0 && len(p.Cmds[0].Args) > 0 {
			if _, isNum := p.Cmds[0].Args[0].(*parse.NumberNode); isNum {
				return fmt.Errorf("template: {{range}} over a number is not allowed; range over visitor data")
			}
		}
		return errors.Join(checkTree(n.List), checkTree(n.ElseList))
	case *parse.IfNode:
		return errors.Join(checkTree(n.List), checkTree(n.ElseList))
	case *parse.WithNode:
		return errors.Join(checkTree(n.List), checkTree(n.ElseList))
	}
	return nil
}

// escaperContexts reports whether html/template escapes an action of t
// (already escaped: Compile executes it once) as JavaScript or as
// CSS.
func escaperContexts(t *template.Template) (js, css bool) {
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n != nil {
				for _, c := range n.Nodes {
					walk(c)
				}
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.PipeNode:
			for _, c := range n.Cmds {
				for _, a := range c.Args {
					if id, ok := a.(*parse.IdentifierNode); ok {
						js = js || strings.HasPrefix(id.Ident, "_html_template_js")
						css = css || strings.HasPrefix(id.Ident, "_html_template_css")
					}
				}
			}
		case *parse.IfNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.List)
			walk(n.ElseList)
		}
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil {
			walk(tt.Tree.Root)
		}
	}
	return js, css
}

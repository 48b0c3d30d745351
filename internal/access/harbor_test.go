package access_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/lading-dev/lading/internal/access"
)

// The matrix is checked against Harbor's own source, copied unchanged
// into testdata/harbor (goharbor/harbor c50c7ddd, Apache License 2.0):
// src/common/rbac/const.go, src/common/rbac/project/rbac_role.go and
// rbac_util.go. When Harbor changes its matrix, copy the new files and
// let this test say what differs.

func parse(t *testing.T, name string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("testdata", "harbor", name), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// harborConsts maps the names of Harbor's Resource and Action constants to
// their values.
func harborConsts(t *testing.T) map[string]string {
	out := map[string]string{}
	ast.Inspect(parse(t, "const.go.txt"), func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Values) != 1 {
			return true
		}
		if call, ok := vs.Values[0].(*ast.CallExpr); ok && len(call.Args) == 1 {
			if fn, ok := call.Fun.(*ast.Ident); ok && (fn.Name == "Resource" || fn.Name == "Action") {
				if lit, ok := call.Args[0].(*ast.BasicLit); ok {
					out[vs.Names[0].Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
		return true
	})
	return out
}

// policies reads the {Resource: rbac.X, Action: rbac.Y} literals under n.
func policies(t *testing.T, consts map[string]string, n ast.Node) access.Policies {
	t.Helper()
	out := access.Policies{}
	ast.Inspect(n, func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if !ok {
			return true
		}
		var res, act string
		var found int
		for _, e := range cl.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			var name string
			switch v := kv.Value.(type) {
			case *ast.SelectorExpr:
				name = v.Sel.Name
			case *ast.Ident:
				name = v.Name
			default:
				continue
			}
			val, ok := consts[name]
			if !ok {
				t.Fatalf("unknown constant %s", name)
			}
			switch kv.Key.(*ast.Ident).Name {
			case "Resource":
				res, found = val, found+1
			case "Action":
				act, found = val, found+1
			}
		}
		if found == 2 {
			r := access.Resource(res)
			if !slices.Contains(out[r], access.Action(act)) {
				out[r] = append(out[r], access.Action(act))
			}
			return false
		}
		return true
	})
	return out
}

// varValue finds the value of the package variable name.
func varValue(t *testing.T, f *ast.File, name string) ast.Expr {
	t.Helper()
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range gd.Specs {
			if vs, ok := s.(*ast.ValueSpec); ok && vs.Names[0].Name == name {
				return vs.Values[0]
			}
		}
	}
	t.Fatalf("no variable %s", name)
	return nil
}

func same(t *testing.T, what string, got, want access.Policies) {
	t.Helper()
	for r, acts := range want {
		for _, a := range acts {
			if !got.Has(r, a) {
				t.Errorf("%s: lading lacks %q on %q", what, a, r)
			}
		}
	}
	for r, acts := range got {
		for _, a := range acts {
			if !slices.Contains(want[r], a) {
				t.Errorf("%s: lading has %q on %q, Harbor does not", what, a, r)
			}
		}
	}
}

func TestMatrixIsHarbors(t *testing.T) {
	consts := harborConsts(t)
	roles := varValue(t, parse(t, "rbac_role.go.txt"), "rolePoliciesMap").(*ast.CompositeLit)
	seen := 0
	for _, e := range roles.Elts {
		kv := e.(*ast.KeyValueExpr)
		name, _ := strconv.Unquote(kv.Key.(*ast.BasicLit).Value)
		var role access.Role
		for _, r := range access.Roles {
			if r.Name() == name {
				role = r
			}
		}
		if role == 0 {
			t.Errorf("Harbor's role %s is unknown to lading", name)
			continue
		}
		seen++
		same(t, name, access.Matrix[role], policies(t, consts, kv.Value))
	}
	if seen != len(access.Roles) || len(access.Matrix) != len(access.Roles) {
		t.Errorf("roles: Harbor %d, lading %d", seen, len(access.Matrix))
	}
	same(t, "public project", access.PublicProject, policies(t, consts, varValue(t, parse(t, "rbac_util.go.txt"), "publicProjectPolicies")))
}

// TestRobotPoliciesAreHarbors: robots may be given Harbor's PoliciesMap
// with what its NolimitProvider (the provider Harbor uses) adds.
func TestRobotPoliciesAreHarbors(t *testing.T) {
	consts := harborConsts(t)
	f := parse(t, "const.go.txt")
	byScope := map[string]access.Policies{}
	for _, e := range varValue(t, f, "PoliciesMap").(*ast.CompositeLit).Elts {
		kv := e.(*ast.KeyValueExpr)
		byScope[kv.Key.(*ast.Ident).Name] = policies(t, consts, kv.Value)
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != "GetPermissions" || fd.Recv == nil {
			continue
		}
		if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); !ok || star.X.(*ast.Ident).Name != "NolimitProvider" {
			continue
		}
		for _, st := range fd.Body.List {
			is, ok := st.(*ast.IfStmt)
			if !ok {
				continue
			}
			scope := is.Cond.(*ast.BinaryExpr).Y.(*ast.Ident).Name
			for r, acts := range policies(t, consts, is.Body) {
				for _, a := range acts {
					if !slices.Contains(byScope[scope][r], a) {
						byScope[scope][r] = append(byScope[scope][r], a)
					}
				}
			}
		}
	}
	if len(byScope) != 2 {
		t.Fatalf("scopes: %v", byScope)
	}
	same(t, "robot system", access.RobotSystemPolicies, byScope["ScopeSystem"])
	same(t, "robot project", access.RobotProjectPolicies, byScope["ScopeProject"])
}

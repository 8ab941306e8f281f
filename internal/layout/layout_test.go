// Package layout_test keeps the repository's shape, as docs/ARCHITECTURE.md
// draws it: which package may import which, no hand-written file over 700
// lines, and a doc comment on every exported identifier.
package layout_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "daemoneye.dev/eventbus"

// allowed is the import graph of docs/ARCHITECTURE.md: each package and
// the module's packages its non-test files may import. cmd/eventbus is on
// top; the client library (the root) and broker stand side by side on the
// packages below, and nothing points up.
var allowed = map[string][]string{
	".":                       {"wire", "topic", "transport", "correlation", "stats", "internal/chunkbuf", "internal/intern", "internal/nbwrite", "internal/wireconv"},
	"broker":                  {"wire", "topic", "transport", "correlation", "acl", "stats", "internal/chunkbuf", "internal/intern", "internal/nbwrite", "internal/wireconv"},
	"cmd/eventbus":            {".", "broker", "wire", "topic", "transport", "correlation", "acl", "stats", "internal/bench"},
	"internal/bench":          {".", "broker", "acl", "correlation", "stats", "transport"},
	"internal/wireconv":       {"wire", "correlation", "stats", "internal/intern"},
	"internal/testutil":       {"wire", "transport"},
	"internal/proctest":       {"wire", "transport", "internal/testutil"},
	"acl":                     {"topic", "transport"},
	"transport/transporttest": {"transport"},
	"wire":                    nil,
	"topic":                   nil,
	"transport":               nil,
	"correlation":             nil,
	"stats":                   nil,
	"internal/chunkbuf":       nil,
	"internal/intern":         nil,
	"internal/nbwrite":        nil,
	"integration":             nil,
	"integration/crossos":     nil,
	"integration/hostile":     nil,
	"internal/layout":         nil,
}

type goFile struct {
	pkg  string // directory relative to the module root, "." for the root
	path string
	ast  *ast.File
	src  []byte
}

func moduleFiles(t *testing.T) []goFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var files []goFile
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() && path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a module of its own, such as bench/compare
			}
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".pb.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		files = append(files, goFile{pkg: filepath.ToSlash(rel), path: path, ast: f, src: src})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestImportGraph(t *testing.T) {
	deps := make(map[string]map[string]bool)
	for _, f := range moduleFiles(t) {
		if f.ast.Name.Name == "main" && f.pkg == "scripts/wine" {
			continue // a build helper, not part of the product
		}
		want, known := allowed[f.pkg]
		if !known {
			t.Errorf("package %s is not in the import graph: add it here and to docs/ARCHITECTURE.md", f.pkg)
			continue
		}
		for _, imp := range f.ast.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != module && !strings.HasPrefix(p, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
			if dep == "" {
				dep = "."
			}
			if !slices.Contains(want, dep) {
				t.Errorf("%s imports %s, which the import graph does not allow", f.path, p)
			}
			if deps[f.pkg] == nil {
				deps[f.pkg] = make(map[string]bool)
			}
			deps[f.pkg][dep] = true
		}
	}
	// What a collector links: the client library must not reach the broker
	// or the policy engine, however indirectly.
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		for d := range deps[p] {
			walk(d)
		}
	}
	walk(".")
	for _, forbidden := range []string{"broker", "acl", "cmd/eventbus", "internal/bench"} {
		if seen[forbidden] {
			t.Errorf("the client library depends on %s", forbidden)
		}
	}
}

func TestFileLength(t *testing.T) {
	const maxLines = 700
	for _, f := range moduleFiles(t) {
		if n := strings.Count(string(f.src), "\n"); n > maxLines {
			t.Errorf("%s has %d lines; split it by responsibility (limit %d)", f.path, n, maxLines)
		}
	}
}

func TestExportedDocumented(t *testing.T) {
	for _, f := range moduleFiles(t) {
		if f.ast.Name.Name == "main" {
			continue
		}
		for _, decl := range f.ast.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && receiverExported(d) && d.Doc == nil {
					t.Errorf("%s: %s has no doc comment", f.path, funcName(d))
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					for _, name := range specNames(spec) {
						if name.IsExported() && d.Doc == nil && specDoc(spec) == nil {
							t.Errorf("%s: %s has no doc comment", f.path, name.Name)
						}
					}
				}
			}
		}
	}
}

func receiverExported(d *ast.FuncDecl) bool {
	if d.Recv == nil {
		return true
	}
	typ := d.Recv.List[0].Type
	for {
		switch x := typ.(type) {
		case *ast.StarExpr:
			typ = x.X
		case *ast.IndexExpr:
			typ = x.X
		case *ast.IndexListExpr:
			typ = x.X
		case *ast.Ident:
			return x.IsExported()
		default:
			return false
		}
	}
}

func funcName(d *ast.FuncDecl) string {
	if d.Recv == nil {
		return d.Name.Name
	}
	return "method " + d.Name.Name
}

func specNames(spec ast.Spec) []*ast.Ident {
	switch s := spec.(type) {
	case *ast.TypeSpec:
		return []*ast.Ident{s.Name}
	case *ast.ValueSpec:
		return s.Names
	}
	return nil
}

func specDoc(spec ast.Spec) *ast.CommentGroup {
	switch s := spec.(type) {
	case *ast.TypeSpec:
		return s.Doc
	case *ast.ValueSpec:
		if s.Doc != nil {
			return s.Doc
		}
		return s.Comment
	}
	return nil
}

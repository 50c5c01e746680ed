package watch

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package where doc.go puts it: watch sits beside web and below cli (doc.go).
func TestImports(t *testing.T) {
	forbidden := []string{"cli", "web", "report"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if rest, ok := strings.CutPrefix(p, "github.com/latlab/latlab/internal/"); ok && slices.Contains(forbidden, rest) {
				t.Errorf("%s imports %s: watch must not import %s", f, p, strings.Join(forbidden, ", "))
			}
		}
	}
}

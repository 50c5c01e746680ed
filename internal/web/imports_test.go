package web

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package where doc.go puts it: web only reads the store; watch results come through Options (doc.go).
func TestImports(t *testing.T) {
	forbidden := []string{"cli", "watch", "topo", "offload", "probe", "workload", "netns", "docker", "docker/dockerlab", "chaos"}
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
				t.Errorf("%s imports %s: web must not import %s", f, p, strings.Join(forbidden, ", "))
			}
		}
	}
}

package netns_test

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/latlab/latlab/internal/netns"
)

func TestErrNotSupportedWraps(t *testing.T) {
	err := fmt.Errorf("create ipvlan eth0: %w", netns.ErrNotSupported)
	if !errors.Is(err, netns.ErrNotSupported) {
		t.Fatal("a wrapped ErrNotSupported is not ErrNotSupported")
	}
	if err.Error() != "create ipvlan eth0: not supported" {
		t.Errorf("message %q", err)
	}
}

// TestImportsNothingOfLatlab keeps the package at the bottom of the graph
// (doc.go): topo, probe, offload and workload import it, so it imports none
// of them, nor anything else of latlab.
func TestImportsNothingOfLatlab(t *testing.T) {
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
			if p, _ := strconv.Unquote(im.Path.Value); strings.HasPrefix(p, "github.com/latlab/latlab/") {
				t.Errorf("%s imports %s: netns must import no other latlab package", f, p)
			}
		}
	}
}

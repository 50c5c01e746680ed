package layers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/latlab/latlab/internal/"

// rank is each package's layer in docs/design.md's map: a package imports
// only packages of a lower rank, so packages of one rank (experiment's
// workers, say) never import one another. A new package must be given its
// place here, which is the point.
var rank = map[string]int{
	"netns": 0, "hist": 0, "buildinfo": 0, "store": 0, "wire": 0,
	"stats": 1, "journal": 1, "sockio": 1, "datapath": 1,
	"topo": 2, "offload": 2, "probe": 2, "workload": 2, "server": 2, "docker": 2, "sidecar": 2,
	"experiment":       3,
	"docker/dockerlab": 4, "report": 4,
	"watch": 5, "web": 5,
	"cli": 6,
}

// testOnly packages are imported by tests only; they may import anything.
var testOnly = []string{"testutil", "testutil/microvm", "kernels", "chaos", "docker/dockertest", "watch/watchtest", "web/webtest", "layers"}

// forbidden narrows a rank where doc.go promises more: the dashboard never
// touches the machine, whatever its rank would allow.
var forbidden = map[string][]string{
	"web":   {"topo", "offload", "probe", "workload", "server", "sockio", "netns", "docker", "docker/dockerlab"},
	"watch": {"report", "docker", "docker/dockerlab"},
}

// imports lists, per package directory under internal/, the latlab
// packages its non-test files import.
func imports(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != ".." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../")))
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if out[pkg] == nil {
			out[pkg] = map[string]bool{}
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if rest, ok := strings.CutPrefix(p, module); ok {
				out[pkg][rest] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportsFollowThePackageMap(t *testing.T) {
	graph := imports(t)
	if len(graph) < 15 {
		t.Fatalf("found only %d packages under internal/: is the walk wrong?", len(graph))
	}
	for pkg, deps := range graph {
		if slices.Contains(testOnly, pkg) {
			continue
		}
		r, ok := rank[pkg]
		if !ok {
			t.Errorf("package %s has no place in the layer table: add it here and to docs/design.md's map", pkg)
			continue
		}
		for dep := range deps {
			switch dr, known := rank[dep]; {
			case slices.Contains(testOnly, dep):
				t.Errorf("%s imports the test-only package %s", pkg, dep)
			case !known:
				t.Errorf("%s imports %s, which has no place in the layer table", pkg, dep)
			case dr >= r:
				t.Errorf("%s (layer %d) imports %s (layer %d): an arrow that climbs or crosses; see docs/design.md's map", pkg, r, dep, dr)
			case slices.Contains(forbidden[pkg], dep):
				t.Errorf("%s imports %s, which its doc.go rules out", pkg, dep)
			}
		}
	}
}

// The rule must catch what it is for: a worker importing experiment, a
// worker importing another, the dashboard reaching for the machine.
func TestRankRuleCatchesClimbs(t *testing.T) {
	for _, bad := range [][2]string{{"topo", "experiment"}, {"workload", "probe"}, {"store", "report"}, {"web", "topo"}, {"experiment", "docker/dockerlab"}} {
		pkg, dep := bad[0], bad[1]
		if rank[dep] < rank[pkg] && !slices.Contains(forbidden[pkg], dep) {
			t.Errorf("%s importing %s would pass", pkg, dep)
		}
	}
}

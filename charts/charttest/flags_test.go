package charttest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainerFlagsExist builds apim-gateway and apim-agent and checks that
// every flag the Deployment passes is one the binary declares: a renamed flag
// would otherwise crash the pods at start.
func TestContainerFlagsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries; skipped with -short")
	}
	t.Parallel()
	d := mustRender(t, with(base(), "cache.external.connectionString", "redis:6379")).deployment(t)
	root := filepath.Join(chartDir(t), "..", "..")
	for _, c := range d.Spec.Template.Spec.Containers {
		name := filepath.Base(c.Command[0])
		bin := filepath.Join(t.TempDir(), name)
		pkg := map[string]string{"apim-gateway": "./gateway/cmd/apim-gateway", "apim-agent": "./extension/cmd/apim-agent"}[name]
		if pkg == "" {
			t.Fatalf("container %s runs %s", c.Name, c.Command[0])
		}
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
		usage, _ := exec.Command(bin, "-h").CombinedOutput()
		for _, arg := range c.Args {
			flag, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
			if !strings.Contains(string(usage), "  -"+flag+" ") && !strings.Contains(string(usage), "  -"+flag+"\n") {
				t.Errorf("%s: %s passes --%s, which %s does not declare", c.Name, name, flag, name)
			}
		}
	}
}

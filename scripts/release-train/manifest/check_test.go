package manifest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

// packagedCharts packages the test chart at every version the testdata
// manifests list (the right app version each time), so the package check
// has something real to read.
func packagedCharts(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	for _, c := range []struct{ version, app, kube string }{
		{"0.1.0", "0.1.0", ""},
		{"0.2.0", "0.2.0", ""},
		{"0.3.0-preview.1", "0.3.0-preview.1", ">=1.29.0-0"},
		{"1.0.0", "1.0.0", ">=1.29.0-0"},
		{"0.3.0-dev.7", "0.3.0-dev.7", ""},
	} {
		dir := t.TempDir()
		chartYAML := "apiVersion: v2\nname: testchart\nversion: " + c.version + "\nappVersion: " + c.app + "\n"
		if c.kube != "" {
			chartYAML += "kubeVersion: \"" + c.kube + "\"\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte(chartYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Package(dir, out, PackageOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func testSchema(t *testing.T) *settings.Schema {
	t.Helper()
	data, err := os.ReadFile("testdata/settings.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := settings.ParseSchema(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheck(t *testing.T) {
	charts := packagedCharts(t)
	schema := testSchema(t)
	tests := []struct {
		file string
		base string
		want []string
	}{
		{file: "good.yaml"},
		{file: "backwards.yaml", want: []string{
			`train "preview": version 0.1.0: listed after 0.2.0; versions only move forward within a train`,
		}},
		{file: "stable-not-in-preview.yaml", want: []string{
			`train "stable": version 0.1.0: was not in preview first (promote it from preview)`,
		}},
		{file: "stable-differs.yaml", want: []string{
			`train "stable": version 0.1.0: differs from the preview entry (chartVersion, appVersion and minKubernetesVersion must be promoted unchanged)`,
			`train "stable": version 0.1.0: packaged chart testchart-0.1.0.tgz has appVersion 0.1.0, want 0.1.1`,
		}},
		{file: "prerelease-in-stable.yaml", want: []string{
			`train "stable": version 0.3.0-preview.1: a prerelease version cannot be on the stable train`,
		}},
		{file: "major-auto-upgrade.yaml", want: []string{
			`train "preview": version 1.0.0: starts major version 1 after 0.2.0 and cannot be an auto-upgrade target (major versions are never auto-upgraded; users pin it with --version)`,
		}},
		{file: "packages.yaml", want: []string{
			`train "preview": version 0.1.0: packaged chart testchart-0.1.0.tgz has appVersion 0.1.0, want 0.9.9`,
			`train "preview": version 0.4.0: no packaged chart testchart-0.4.0.tgz (run release-train package)`,
		}},
		{file: "min-k8s-below-chart.yaml", want: []string{
			`train "preview": version 0.3.0-preview.1: minKubernetesVersion 1.27 is below what the chart accepts (kubeVersion ">=1.29.0-0")`,
		}},
		{file: "fields.yaml", want: []string{
			`train "preview": version 0.1: version is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE])`,
			`train "preview": version 0.2.0: minKubernetesVersion "latest" must look like 1.28`,
			`train "preview": version 0.2.0: autoUpgradeTarget is required (true or false)`,
		}},
		{file: "header-problems.yaml", want: []string{
			`scopes.default "everywhere" is not in scopes.allowed`,
			`release train "preview" is missing`,
			`train "stable": stable and preview are public trains and cannot be hidden`,
			`settings.protected: secret.key is x-protected in the settings schema but not listed`,
			`settings.protected: plain.key is not an x-protected key of the settings schema`,
		}},
		{file: "base-new.yaml", base: "base-old.yaml", want: []string{
			`train "preview": version 0.1.0: was already released with different fields; published versions are immutable (publish a new version)`,
			`train "preview": version 0.2.0: is new but not newer than 0.3.0, which the train already released; versions only move forward`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			m, err := Read(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			o := CheckOptions{Root: "testdata", Schema: schema, ChartsDir: charts}
			if tt.base != "" {
				if o.Base, err = Read(filepath.Join("testdata", tt.base)); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, p := range m.Check(o) {
				got = append(got, p.Error())
			}
			// Each check group reports in manifest order; compare as sets.
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("problems:\n got  %q\n want %q", got, want)
			}
		})
	}
}

func TestParseRejectsUnknownFields(t *testing.T) {
	_, err := Read("testdata/unknown-field.yaml")
	if err == nil || !strings.Contains(err.Error(), "line 17: field versoins not found") {
		t.Fatalf("err = %v, want the line and the unknown field named", err)
	}
}

// The repository's own manifest must list exactly the schema's protected
// keys and pass every check that needs no packaged chart.
func TestRepositoryManifest(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	m, err := Read(filepath.Join(root, "extension-manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, m.Settings.Schema))
	if err != nil {
		t.Fatal(err)
	}
	schema, err := settings.ParseSchema(data)
	if err != nil {
		t.Fatal(err)
	}
	if ps := m.Check(CheckOptions{Root: root, Schema: schema}); len(ps) > 0 {
		t.Fatalf("extension-manifest.yaml: %v", ps)
	}
	if m.ExtensionType != "Microsoft.ApiManagement.Gateway" || m.Scopes.Default != "namespace" {
		t.Errorf("extensionType %q, default scope %q", m.ExtensionType, m.Scopes.Default)
	}
	dev, ok := m.Train("dev")
	if !ok || !dev.Hidden {
		t.Errorf("the dev train must exist and be hidden")
	}
}

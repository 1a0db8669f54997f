package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func boolPtr(b bool) *bool { return &b }

func TestAdd(t *testing.T) {
	good := readTestdata(t, "good.yaml")
	tests := []struct {
		name    string
		train   string
		version Version
		wantErr string
	}{
		{name: "forward", train: "preview", version: Version{Version: "1.1.0", ChartVersion: "1.1.0", AppVersion: "1.1.0", MinKubernetesVersion: "1.29", AutoUpgradeTarget: boolPtr(true)}},
		{name: "train name without case", train: "Preview", version: Version{Version: "1.0.1", ChartVersion: "1.0.1", AppVersion: "1.0.1", MinKubernetesVersion: "1.29", AutoUpgradeTarget: boolPtr(true)}},
		{name: "backwards", train: "preview", version: Version{Version: "0.2.5", ChartVersion: "0.2.5", AppVersion: "0.2.5", MinKubernetesVersion: "1.28", AutoUpgradeTarget: boolPtr(true)},
			wantErr: `train "preview": version 0.2.5: listed after 1.0.0; versions only move forward within a train`},
		{name: "duplicate", train: "preview", version: Version{Version: "0.2.0", ChartVersion: "0.2.0", AppVersion: "0.2.0", MinKubernetesVersion: "1.28", AutoUpgradeTarget: boolPtr(true)},
			wantErr: `train "preview": version 0.2.0: is already listed`},
		{name: "unknown train", train: "nightly", version: Version{Version: "2.0.0", ChartVersion: "2.0.0", AppVersion: "2.0.0", MinKubernetesVersion: "1.28", AutoUpgradeTarget: boolPtr(false)},
			wantErr: `release train "nightly" does not exist (trains: stable, preview, dev)`},
		{name: "straight to stable", train: "stable", version: Version{Version: "0.5.0", ChartVersion: "0.5.0", AppVersion: "0.5.0", MinKubernetesVersion: "1.28", AutoUpgradeTarget: boolPtr(true)},
			wantErr: `train "stable": version 0.5.0: was not in preview first (promote it from preview)`},
		{name: "bad kubernetes version", train: "dev", version: Version{Version: "0.3.0-dev.8", ChartVersion: "0.3.0-dev.8", AppVersion: "x", MinKubernetesVersion: "v1.29", AutoUpgradeTarget: boolPtr(true)},
			wantErr: `train "dev": version 0.3.0-dev.8: minKubernetesVersion "v1.29" must look like 1.28`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := Add(good, tt.train, tt.version)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			tr, _ := m.Train(tt.train)
			last := tr.Versions[len(tr.Versions)-1]
			if last.Version != tt.version.Version || last.AppVersion != tt.version.AppVersion || !last.IsAutoUpgradeTarget() {
				t.Errorf("last version on %s = %+v", tt.train, last)
			}
			if len(m.ReleaseTrains) != 3 {
				t.Errorf("trains = %v", m.TrainNames())
			}
		})
	}
}

func TestAddKeepsComments(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "extension-manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Add(data, "preview", Version{Version: "0.2.0-preview.1", ChartVersion: "0.2.0-preview.1", AppVersion: "0.2.0-preview.1", MinKubernetesVersion: "1.28", AutoUpgradeTarget: boolPtr(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"# Versions are listed oldest first", "# Cluster types the extension can be installed on"} {
		if !strings.Contains(string(out), c) {
			t.Errorf("comment %q lost", c)
		}
	}
}

func TestPromote(t *testing.T) {
	good := readTestdata(t, "good.yaml")
	tests := []struct {
		name, from, to, version string
		wantErr                 string
	}{
		{name: "major version, pinned only", from: "preview", to: "stable", version: "1.0.0"},
		{name: "prerelease", from: "preview", to: "stable", version: "0.3.0-preview.1",
			wantErr: `train "stable": version 0.3.0-preview.1: a prerelease version cannot be on the stable train`},
		{name: "not on the source train", from: "preview", to: "stable", version: "0.9.0",
			wantErr: `train "preview": version 0.9.0: is not listed, so it cannot be promoted (listed: 0.1.0, 0.2.0, 0.3.0-preview.1, 1.0.0)`},
		{name: "already there", from: "preview", to: "stable", version: "0.2.0",
			wantErr: `train "stable": version 0.2.0: is already listed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := Promote(good, tt.from, tt.to, tt.version)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(out)
			if err != nil {
				t.Fatal(err)
			}
			to, _ := m.Train(tt.to)
			from, _ := m.Train(tt.from)
			got, ok := to.Find(tt.version)
			src, _ := from.Find(tt.version)
			if !ok || !sameBuild(got, src) || got.IsAutoUpgradeTarget() != src.IsAutoUpgradeTarget() {
				t.Errorf("promoted %+v, source %+v", got, src)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	m, err := Read("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	preview, _ := m.Train("PREVIEW")
	stable, _ := m.Train("Stable")
	install := []struct {
		name        string
		train       *Train
		pinned      string
		autoUpgrade bool
		want        string
		wantErr     string
	}{
		{name: "latest auto-upgrade target", train: preview, autoUpgrade: true, want: "0.3.0-preview.1"},
		{name: "stable latest", train: stable, autoUpgrade: true, want: "0.2.0"},
		{name: "pinned non-target", train: preview, pinned: "1.0.0", want: "1.0.0"},
		{name: "pin with auto-upgrade", train: preview, pinned: "1.0.0", autoUpgrade: true,
			wantErr: "to pin to specific version, auto-upgrade-minor-version must be set to 'false'"},
		{name: "no pin without auto-upgrade", train: stable,
			wantErr: `release train "stable": auto-upgrade-minor-version is false, so a version must be pinned with --version (listed: 0.1.0, 0.2.0)`},
		{name: "pin not on the train", train: stable, pinned: "0.3.0-preview.1",
			wantErr: `release train "stable": version 0.3.0-preview.1: no version available (listed: 0.1.0, 0.2.0)`},
	}
	for _, tt := range install {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.train.ResolveInstall(tt.pinned, tt.autoUpgrade)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || v.Version != tt.want {
				t.Fatalf("got %q, %v; want %q", v.Version, err, tt.want)
			}
		})
	}

	crossing := &Train{Name: "preview", Versions: []Version{
		{Version: "0.1.0", AutoUpgradeTarget: boolPtr(true)},
		{Version: "0.1.1", AutoUpgradeTarget: boolPtr(false)},
		{Version: "0.2.0", AutoUpgradeTarget: boolPtr(true)},
		{Version: "1.0.0", AutoUpgradeTarget: boolPtr(false)},
		{Version: "1.1.0", AutoUpgradeTarget: boolPtr(true)},
		{Version: "1.2.0-rc.1", AutoUpgradeTarget: boolPtr(true)},
	}}
	upgrades := []struct {
		installed string
		want      string // "" = stays
	}{
		{"0.1.0", "0.2.0"},         // skips the non-target 0.1.1, never reaches 1.x
		{"0.1.1", "0.2.0"},         // a pinned-only version still upgrades within its major
		{"0.2.0", ""},              // 1.1.0 is newer but a major away
		{"1.0.0", "1.2.0-rc.1"},    // newest target of the same major
		{"1.2.0-rc.1", ""},         // already the newest
		{"not-a-version", ""},      // nothing sensible to do
		{"0.0.9", "0.2.0"},         // unlisted but same major
		{"2.0.0", ""},              // ahead of the train: never downgrade
		{"1.1.0", "1.2.0-rc.1"},    // prerelease targets count on trains that carry them
		{"0.2.0-alpha.1", "0.2.0"}, // prerelease of a listed version
		{"1.2.0", ""},              // the release of the rc is newer than the rc
		{"0.1.0+build.5", "0.2.0"}, // build metadata is ignored
		{"1.0.0-rc.0", "1.2.0-rc.1"},
	}
	for _, u := range upgrades {
		got, ok := crossing.AutoUpgrade(u.installed)
		if (u.want == "") == ok || (ok && got.Version != u.want) {
			t.Errorf("AutoUpgrade(%s) = %q, %v; want %q", u.installed, got.Version, ok, u.want)
		}
	}
}

// Package manifest reads, checks and edits extension-manifest.yaml: the
// description of the Arc extension type, its release trains and the versions
// each train offers. The release-train tool edits it; the Arc emulator
// resolves versions from it the way Arc's extension manager does.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
)

// Manifest is extension-manifest.yaml.
type Manifest struct {
	ExtensionType         string   `yaml:"extensionType"`
	Publisher             string   `yaml:"publisher"`
	Description           string   `yaml:"description"`
	Chart                 Chart    `yaml:"chart"`
	SupportedClusterTypes []string `yaml:"supportedClusterTypes"`
	Scopes                Scopes   `yaml:"scopes"`
	Settings              Settings `yaml:"settings"`
	Portal                Portal   `yaml:"portal"`
	ReleaseTrains         []Train  `yaml:"releaseTrains"`
}

// Chart names the Helm chart every version packages.
type Chart struct {
	Name string `yaml:"name"`
	// Path is the chart folder, relative to the manifest.
	Path string `yaml:"path"`
	// Repository is where packaged charts are published (informational).
	Repository string `yaml:"repository"`
}

// Scopes are the installation scopes an extension instance may use.
type Scopes struct {
	Default string   `yaml:"default"`
	Allowed []string `yaml:"allowed"`
}

// Settings points at the settings schema and lists the protected keys.
type Settings struct {
	// Schema is the settings schema, relative to the manifest.
	Schema string `yaml:"schema"`
	// Protected lists the keys that must be passed as protected settings;
	// it must equal the x-protected keys of the schema.
	Protected []string `yaml:"protected"`
}

// Portal points at the portal's UI definition and the ARM template it feeds.
type Portal struct {
	CreateUIDefinition string `yaml:"createUiDefinition"`
	Template           string `yaml:"template"`
}

// Train is one release train.
type Train struct {
	Name string `yaml:"name"`
	// Hidden trains are not offered in the portal or listed to users; a
	// version there is installed by naming the train and pinning it.
	Hidden   bool      `yaml:"hidden,omitempty"`
	Versions []Version `yaml:"versions"`
}

// Version is one extension version published on a train.
type Version struct {
	Version              string `yaml:"version"`
	ChartVersion         string `yaml:"chartVersion"`
	AppVersion           string `yaml:"appVersion"`
	MinKubernetesVersion string `yaml:"minKubernetesVersion"`
	// AutoUpgradeTarget says whether extensions that auto-upgrade may be
	// moved to this version without the user pinning it. A pointer so a
	// missing value is an error rather than a silent false.
	AutoUpgradeTarget *bool `yaml:"autoUpgradeTarget"`
}

// IsAutoUpgradeTarget reports the autoUpgradeTarget flag (false when unset).
func (v Version) IsAutoUpgradeTarget() bool {
	return v.AutoUpgradeTarget != nil && *v.AutoUpgradeTarget
}

// Known values Arc accepts (reference/arc.md section 1.2).
var (
	knownClusterTypes = []string{"connectedClusters", "managedClusters", "appliances", "provisionedClusters"}
	knownScopes       = []string{"cluster", "namespace"}
)

// Read reads and parses a manifest file.
func Read(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse parses a manifest strictly: unknown fields are errors that name the
// line.
func Parse(data []byte) (*Manifest, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &m, nil
}

// Train returns the train with the given name. Arc compares train names
// without regard to case (the CLI default is "Stable").
func (m *Manifest) Train(name string) (*Train, bool) {
	for i := range m.ReleaseTrains {
		if strings.EqualFold(m.ReleaseTrains[i].Name, name) {
			return &m.ReleaseTrains[i], true
		}
	}
	return nil, false
}

// TrainNames lists the train names in manifest order.
func (m *Manifest) TrainNames() []string {
	out := make([]string, 0, len(m.ReleaseTrains))
	for _, t := range m.ReleaseTrains {
		out = append(out, t.Name)
	}
	return out
}

// Find returns the entry for a version on the train.
func (t *Train) Find(version string) (Version, bool) {
	want, err := semver.StrictNewVersion(version)
	if err != nil {
		return Version{}, false
	}
	for _, v := range t.Versions {
		if got, err := semver.StrictNewVersion(v.Version); err == nil && got.Equal(want) {
			return v, true
		}
	}
	return Version{}, false
}

// ErrNoVersion means a train offers no version that fits the request.
var ErrNoVersion = errors.New("no version available")

// ResolveInstall picks the version Arc installs for a new or updated
// extension instance. A pinned version must be listed on the train and needs
// autoUpgrade false (the CLI and, since API 2023-05-01, the service reject
// both together). Without a pin, the newest auto-upgrade target on the train
// is installed.
func (t *Train) ResolveInstall(pinned string, autoUpgrade bool) (Version, error) {
	if pinned != "" {
		if autoUpgrade {
			return Version{}, errors.New("to pin to specific version, auto-upgrade-minor-version must be set to 'false'")
		}
		v, ok := t.Find(pinned)
		if !ok {
			return Version{}, fmt.Errorf("release train %q: version %s: %w (listed: %s)", t.Name, pinned, ErrNoVersion, t.listed())
		}
		return v, nil
	}
	if !autoUpgrade {
		return Version{}, fmt.Errorf("release train %q: auto-upgrade-minor-version is false, so a version must be pinned with --version (listed: %s)", t.Name, t.listed())
	}
	var best *Version
	var bestSV *semver.Version
	for i, v := range t.Versions {
		sv, err := semver.StrictNewVersion(v.Version)
		if err != nil || !v.IsAutoUpgradeTarget() {
			continue
		}
		if bestSV == nil || sv.GreaterThan(bestSV) {
			best, bestSV = &t.Versions[i], sv
		}
	}
	if best == nil {
		return Version{}, fmt.Errorf("release train %q: %w: no version is an auto-upgrade target", t.Name, ErrNoVersion)
	}
	return *best, nil
}

// AutoUpgrade returns the version an auto-upgrading extension at installed
// moves to: the newest auto-upgrade target on the train that is newer than
// installed and has the same major version (major versions are never
// upgraded automatically). ok is false when there is nothing to do.
func (t *Train) AutoUpgrade(installed string) (Version, bool) {
	cur, err := semver.StrictNewVersion(installed)
	if err != nil {
		return Version{}, false
	}
	var best *Version
	bestSV := cur
	for i, v := range t.Versions {
		sv, err := semver.StrictNewVersion(v.Version)
		if err != nil || !v.IsAutoUpgradeTarget() || sv.Major() != cur.Major() {
			continue
		}
		if sv.GreaterThan(bestSV) {
			best, bestSV = &t.Versions[i], sv
		}
	}
	if best == nil {
		return Version{}, false
	}
	return *best, true
}

func (t *Train) listed() string {
	if len(t.Versions) == 0 {
		return "none"
	}
	vs := make([]string, 0, len(t.Versions))
	for _, v := range t.Versions {
		vs = append(vs, v.Version)
	}
	return strings.Join(vs, ", ")
}

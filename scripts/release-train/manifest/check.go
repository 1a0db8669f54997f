package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

// Problem is one finding of Check. It names the train and version it is
// about, so a release engineer knows which line to fix.
type Problem struct {
	Train   string
	Version string
	Msg     string
}

func (p Problem) Error() string {
	switch {
	case p.Train != "" && p.Version != "":
		return fmt.Sprintf("train %q: version %s: %s", p.Train, p.Version, p.Msg)
	case p.Train != "":
		return fmt.Sprintf("train %q: %s", p.Train, p.Msg)
	default:
		return p.Msg
	}
}

// CheckOptions selects the checks that need more than the manifest itself.
type CheckOptions struct {
	// Root is the folder the manifest's relative paths start from; when
	// set, the referenced schema, chart and portal files must exist.
	Root string
	// Schema is the parsed settings schema; when set, settings.protected
	// must equal its x-protected keys.
	Schema *settings.Schema
	// ChartsDir holds packaged charts (<name>-<chartVersion>.tgz); when set,
	// every listed version must have one with the right versions.
	ChartsDir string
	// Base is the previously released manifest (e.g. from the last
	// commit); when set, published versions must be unchanged and new ones
	// must be newer than what the train already offered.
	Base *Manifest
}

var minKubeRE = regexp.MustCompile(`^1\.[0-9]+(\.[0-9]+)?$`)

// Check returns every problem found, in manifest order.
func (m *Manifest) Check(o CheckOptions) []error {
	var ps []error
	add := func(train, version, format string, args ...any) {
		ps = append(ps, Problem{Train: train, Version: version, Msg: fmt.Sprintf(format, args...)})
	}
	m.checkHeader(add)
	m.checkTrains(add)
	if o.Root != "" {
		for _, f := range []struct{ field, path string }{
			{"settings.schema", m.Settings.Schema},
			{"chart.path", m.Chart.Path},
			{"portal.createUiDefinition", m.Portal.CreateUIDefinition},
			{"portal.template", m.Portal.Template},
		} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(o.Root, f.path)); err != nil {
				add("", "", "%s: %s does not exist", f.field, f.path)
			}
		}
	}
	if o.Schema != nil {
		m.checkProtected(o.Schema, add)
	}
	if o.Base != nil {
		m.checkAgainstBase(o.Base, add)
	}
	if o.ChartsDir != "" {
		m.checkPackages(o.ChartsDir, add)
	}
	return ps
}

type addFunc func(train, version, format string, args ...any)

func (m *Manifest) checkHeader(add addFunc) {
	if m.ExtensionType == "" {
		add("", "", "extensionType is required")
	}
	if m.Chart.Name == "" {
		add("", "", "chart.name is required")
	}
	if len(m.SupportedClusterTypes) == 0 {
		add("", "", "supportedClusterTypes is empty")
	}
	for _, ct := range m.SupportedClusterTypes {
		if !slices.Contains(knownClusterTypes, ct) {
			add("", "", "supportedClusterTypes: unknown cluster type %q (known: %s)", ct, strings.Join(knownClusterTypes, ", "))
		}
	}
	for _, s := range m.Scopes.Allowed {
		if !slices.Contains(knownScopes, s) {
			add("", "", "scopes.allowed: unknown scope %q (known: cluster, namespace)", s)
		}
	}
	if !slices.Contains(m.Scopes.Allowed, m.Scopes.Default) {
		add("", "", "scopes.default %q is not in scopes.allowed", m.Scopes.Default)
	}
	if m.Settings.Schema == "" {
		add("", "", "settings.schema is required")
	}
	seen := map[string]bool{}
	for _, k := range m.Settings.Protected {
		if seen[k] {
			add("", "", "settings.protected: %s is listed twice", k)
		}
		seen[k] = true
	}
}

func (m *Manifest) checkTrains(add addFunc) {
	names := map[string]bool{}
	for _, t := range m.ReleaseTrains {
		key := strings.ToLower(t.Name)
		if t.Name == "" {
			add("", "", "a release train has no name")
		} else if names[key] {
			add(t.Name, "", "listed twice (train names are compared without case)")
		}
		names[key] = true
	}
	for _, need := range []string{"stable", "preview"} {
		if !names[need] {
			add("", "", "release train %q is missing", need)
		}
	}
	for _, t := range m.ReleaseTrains {
		m.checkTrain(t, add)
	}
}

func (m *Manifest) checkTrain(t Train, add addFunc) {
	isStable := strings.EqualFold(t.Name, "stable")
	if t.Hidden && (isStable || strings.EqualFold(t.Name, "preview")) {
		add(t.Name, "", "stable and preview are public trains and cannot be hidden")
	}
	preview, _ := m.Train("preview")
	var prev *semver.Version
	var prevName string
	for _, v := range t.Versions {
		sv, err := semver.StrictNewVersion(v.Version)
		if err != nil {
			add(t.Name, v.Version, "version is not a semantic version (MAJOR.MINOR.PATCH[-PRERELEASE])")
			continue
		}
		if _, err := semver.StrictNewVersion(v.ChartVersion); err != nil {
			add(t.Name, v.Version, "chartVersion %q is not a semantic version", v.ChartVersion)
		}
		if v.AppVersion == "" {
			add(t.Name, v.Version, "appVersion is required")
		}
		if !minKubeRE.MatchString(v.MinKubernetesVersion) {
			add(t.Name, v.Version, "minKubernetesVersion %q must look like 1.28", v.MinKubernetesVersion)
		}
		if v.AutoUpgradeTarget == nil {
			add(t.Name, v.Version, "autoUpgradeTarget is required (true or false)")
		}
		if isStable && sv.Prerelease() != "" {
			add(t.Name, v.Version, "a prerelease version cannot be on the stable train")
		}
		if isStable && preview != nil {
			pv, ok := preview.Find(v.Version)
			switch {
			case !ok:
				add(t.Name, v.Version, "was not in preview first (promote it from preview)")
			case !sameBuild(pv, v):
				add(t.Name, v.Version, "differs from the preview entry (chartVersion, appVersion and minKubernetesVersion must be promoted unchanged)")
			}
		}
		if prev != nil {
			if !sv.GreaterThan(prev) {
				add(t.Name, v.Version, "listed after %s; versions only move forward within a train", prevName)
			} else if sv.Major() > prev.Major() && v.IsAutoUpgradeTarget() {
				add(t.Name, v.Version, "starts major version %d after %s and cannot be an auto-upgrade target (major versions are never auto-upgraded; users pin it with --version)", sv.Major(), prevName)
			}
		}
		if prev == nil || sv.GreaterThan(prev) {
			prev, prevName = sv, v.Version
		}
	}
}

func sameBuild(a, b Version) bool {
	return a.ChartVersion == b.ChartVersion && a.AppVersion == b.AppVersion && a.MinKubernetesVersion == b.MinKubernetesVersion
}

func (m *Manifest) checkProtected(s *settings.Schema, add addFunc) {
	var want []string
	for _, k := range s.Keys() {
		if key, _ := s.Key(k); key.Protected {
			want = append(want, k)
		}
	}
	for _, k := range want {
		if !slices.Contains(m.Settings.Protected, k) {
			add("", "", "settings.protected: %s is x-protected in the settings schema but not listed", k)
		}
	}
	for _, k := range m.Settings.Protected {
		if !slices.Contains(want, k) {
			add("", "", "settings.protected: %s is not an x-protected key of the settings schema", k)
		}
	}
}

func (m *Manifest) checkAgainstBase(base *Manifest, add addFunc) {
	for _, bt := range base.ReleaseTrains {
		t, ok := m.Train(bt.Name)
		if !ok {
			continue
		}
		var top *semver.Version
		var topName string
		for _, bv := range bt.Versions {
			sv, err := semver.StrictNewVersion(bv.Version)
			if err != nil {
				continue
			}
			if top == nil || sv.GreaterThan(top) {
				top, topName = sv, bv.Version
			}
			if v, ok := t.Find(bv.Version); ok && (!sameBuild(v, bv) || v.IsAutoUpgradeTarget() != bv.IsAutoUpgradeTarget()) {
				add(t.Name, v.Version, "was already released with different fields; published versions are immutable (publish a new version)")
			}
		}
		if top == nil {
			continue
		}
		for _, v := range t.Versions {
			if _, old := bt.Find(v.Version); old {
				continue
			}
			if sv, err := semver.StrictNewVersion(v.Version); err == nil && !sv.GreaterThan(top) {
				add(t.Name, v.Version, "is new but not newer than %s, which the train already released; versions only move forward", topName)
			}
		}
	}
}

// PackagePath is where a packaged chart version lives in a charts folder.
func PackagePath(dir, chartName, chartVersion string) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%s.tgz", chartName, chartVersion))
}

func (m *Manifest) checkPackages(dir string, add addFunc) {
	for _, t := range m.ReleaseTrains {
		for _, v := range t.Versions {
			p := PackagePath(dir, m.Chart.Name, v.ChartVersion)
			if _, err := os.Stat(p); err != nil {
				add(t.Name, v.Version, "no packaged chart %s (run release-train package)", filepath.Base(p))
				continue
			}
			c, err := loader.Load(p)
			if err != nil {
				add(t.Name, v.Version, "packaged chart %s does not load: %v", filepath.Base(p), err)
				continue
			}
			md := c.Metadata
			if md.Name != m.Chart.Name {
				add(t.Name, v.Version, "packaged chart %s is named %q, want %q", filepath.Base(p), md.Name, m.Chart.Name)
			}
			if md.Version != v.ChartVersion {
				add(t.Name, v.Version, "packaged chart %s has version %s, want %s", filepath.Base(p), md.Version, v.ChartVersion)
			}
			if md.AppVersion != v.AppVersion {
				add(t.Name, v.Version, "packaged chart %s has appVersion %s, want %s", filepath.Base(p), md.AppVersion, v.AppVersion)
			}
			if md.KubeVersion != "" && minKubeRE.MatchString(v.MinKubernetesVersion) {
				if ok, err := kubeVersionAllows(md.KubeVersion, v.MinKubernetesVersion); err != nil {
					add(t.Name, v.Version, "packaged chart %s: kubeVersion %q: %v", filepath.Base(p), md.KubeVersion, err)
				} else if !ok {
					add(t.Name, v.Version, "minKubernetesVersion %s is below what the chart accepts (kubeVersion %q)", v.MinKubernetesVersion, md.KubeVersion)
				}
			}
		}
	}
}

// kubeVersionAllows reports whether a Kubernetes minor version (1.28)
// satisfies a chart's kubeVersion constraint.
func kubeVersionAllows(constraint, minor string) (bool, error) {
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return false, err
	}
	if strings.Count(minor, ".") == 1 {
		minor += ".0"
	}
	v, err := semver.NewVersion(minor)
	if err != nil {
		return false, err
	}
	return c.Check(v), nil
}

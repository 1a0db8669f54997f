package extmanager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/seed393f6fe3/apim-arc-gateway/scripts/release-train/manifest"
)

// Kube runs Helm operations against one cluster with the Helm v3 SDK.
type Kube struct {
	Kubeconfig string
	Context    string
	// Atomic rolls a failed install or upgrade back (and waits for
	// readiness); Arc's extension manager behaves this way (reference/arc.md
	// section 7, item 2). Off for API-server-only tests, where pods never
	// become ready.
	Atomic  bool
	Timeout time.Duration
	// Debug receives Helm's debug log; nil discards it. Helm does not log
	// values, so protected settings stay out of it.
	Debug io.Writer
}

func (k Kube) flags(namespace string) *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(false)
	f.KubeConfig = &k.Kubeconfig
	if k.Context != "" {
		f.Context = &k.Context
	}
	f.Namespace = &namespace
	return f
}

func (k Kube) config(namespace string) (*action.Configuration, error) {
	debug := k.Debug
	if debug == nil {
		debug = io.Discard
	}
	cfg := new(action.Configuration)
	err := cfg.Init(k.flags(namespace), namespace, "secret", func(format string, v ...any) {
		fmt.Fprintf(debug, format+"\n", v...)
	})
	if err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	return cfg, nil
}

// ServerVersion returns the cluster's Kubernetes major and minor version.
func (k Kube) ServerVersion() (major, minor int, err error) {
	dc, err := k.flags("default").ToDiscoveryClient()
	if err != nil {
		return 0, 0, fmt.Errorf("kubernetes: %w", err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return 0, 0, fmt.Errorf("kubernetes version: %w", err)
	}
	// Some distributions report a minor like "28+".
	major, err1 := strconv.Atoi(strings.TrimRight(v.Major, "+"))
	minor, err2 := strconv.Atoi(strings.TrimRight(v.Minor, "+"))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("kubernetes version %s.%s is not numeric", v.Major, v.Minor)
	}
	return major, minor, nil
}

// LoadChart loads the packaged chart a version deploys and checks that it
// is what the manifest says it is.
func LoadChart(chartsDir, chartName string, v manifest.Version) (*chart.Chart, error) {
	p := manifest.PackagePath(chartsDir, chartName, v.ChartVersion)
	c, err := loader.Load(p)
	if err != nil {
		return nil, fmt.Errorf("version %s: chart package: %w (package it with release-train package)", v.Version, err)
	}
	if c.Metadata.Version != v.ChartVersion || (v.AppVersion != "" && c.Metadata.AppVersion != v.AppVersion) {
		return nil, fmt.Errorf("version %s: %s holds chart %s (app %s), the manifest says %s (app %s)",
			v.Version, p, c.Metadata.Version, c.Metadata.AppVersion, v.ChartVersion, v.AppVersion)
	}
	return c, nil
}

// CheckKubernetesVersion refuses a version whose minKubernetesVersion the
// cluster does not meet.
func (k Kube) CheckKubernetesVersion(v manifest.Version) error {
	if v.MinKubernetesVersion == "" {
		return nil
	}
	parts := strings.SplitN(v.MinKubernetesVersion, ".", 3)
	wantMajor, err1 := strconv.Atoi(parts[0])
	wantMinor := 0
	var err2 error
	if len(parts) > 1 {
		wantMinor, err2 = strconv.Atoi(parts[1])
	}
	if err1 != nil || err2 != nil {
		return fmt.Errorf("version %s: minKubernetesVersion %q is not a version", v.Version, v.MinKubernetesVersion)
	}
	major, minor, err := k.ServerVersion()
	if err != nil {
		return err
	}
	if major < wantMajor || major == wantMajor && minor < wantMinor {
		return fmt.Errorf("version %s needs Kubernetes %s or later; the cluster runs %d.%d", v.Version, v.MinKubernetesVersion, major, minor)
	}
	return nil
}

// Apply runs one action. chartsDir and chartName locate the packaged chart.
func (k Kube) Apply(ctx context.Context, a *Action, chartsDir, chartName string) error {
	cfg, err := k.config(a.Namespace)
	if err != nil {
		return err
	}
	timeout := k.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	switch a.Kind {
	case Uninstall:
		u := action.NewUninstall(cfg)
		u.IgnoreNotFound = true
		u.Timeout = timeout
		u.Wait = k.Atomic
		if _, err := u.Run(a.Release); err != nil {
			return fmt.Errorf("helm uninstall %s: %w", a.Release, err)
		}
		return nil
	case Install, Upgrade:
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	if err := k.CheckKubernetesVersion(a.Version); err != nil {
		return err
	}
	c, err := LoadChart(chartsDir, chartName, a.Version)
	if err != nil {
		return err
	}
	if a.Kind == Upgrade {
		// An instance whose install failed (and was rolled back) has no
		// release: Arc's retry installs it, so do the same.
		if _, err := action.NewHistory(cfg).Run(a.Release); errors.Is(err, driver.ErrReleaseNotFound) {
			a = &Action{Kind: Install, Release: a.Release, Namespace: a.Namespace, Version: a.Version, Values: a.Values, Secrets: a.Secrets}
		}
	}
	if a.Kind == Install {
		i := action.NewInstall(cfg)
		i.ReleaseName = a.Release
		i.Namespace = a.Namespace
		i.CreateNamespace = true
		i.Atomic = k.Atomic
		i.Timeout = timeout
		if _, err := i.RunWithContext(ctx, c, a.Values); err != nil {
			return fmt.Errorf("helm install %s: %w", a.Release, err)
		}
		return nil
	}
	u := action.NewUpgrade(cfg)
	u.Namespace = a.Namespace
	u.Atomic = k.Atomic
	u.Timeout = timeout
	// The values are the whole desired state, as Arc sends them; nothing is
	// reused from the previous release (that is how omitted protected
	// settings disappear).
	u.ResetValues = true
	if _, err := u.RunWithContext(ctx, a.Release, c, a.Values); err != nil {
		return fmt.Errorf("helm upgrade %s: %w", a.Release, err)
	}
	return nil
}

// ReleaseValues returns the values the release was installed with.
func (k Kube) ReleaseValues(release, namespace string) (map[string]any, error) {
	cfg, err := k.config(namespace)
	if err != nil {
		return nil, err
	}
	vals, err := action.NewGetValues(cfg).Run(release)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("helm release %s in %s: %w", release, namespace, err)
	}
	if err != nil {
		return nil, fmt.Errorf("helm get values %s: %w", release, err)
	}
	return vals, nil
}

// DefaultKubeconfig is $KUBECONFIG's first file, or ~/.kube/config.
func DefaultKubeconfig() string {
	if v := os.Getenv("KUBECONFIG"); v != "" {
		return strings.Split(v, string(os.PathListSeparator))[0]
	}
	home, _ := os.UserHomeDir()
	return home + "/.kube/config"
}

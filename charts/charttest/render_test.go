// Package charttest holds the template tests of charts/apim-gateway: the
// chart is rendered with the helm v3 SDK exactly as `helm install --dry-run`
// (and Arc's extension manager) would, values schema included.
package charttest

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"sigs.k8s.io/yaml"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

const (
	releaseName = "gw"
	namespace   = "apim"
	fullname    = "gw-apim-gateway"
	// A gateway token of the documented shape, distinctive enough to be
	// searched for in every rendered object.
	testToken = "GatewayKey gw1&202712312359&TOKENSIGNATURE0123456789secret=="
	statusURI = "https://contoso.configuration.azure-api.net"
)

// chartDir is charts/apim-gateway, found from this file so `go test` works
// from any folder.
func chartDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's folder")
	}
	return filepath.Join(filepath.Dir(file), "..", "apim-gateway")
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// arc turns dotted settings into nested values, as Arc's extension manager
// does with --configuration-settings and --config-protected-settings.
func arc(settings map[string]any) map[string]any {
	out := map[string]any{}
	for _, key := range slices.Sorted(maps.Keys(settings)) {
		parts := strings.Split(key, ".")
		cur := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		cur[parts[len(parts)-1]] = settings[key]
	}
	return out
}

// base returns the smallest valid settings: a configuration URI and a token.
func base() map[string]any {
	return map[string]any{
		"gateway.configuration.uri": statusURI,
		"gateway.auth.token":        testToken,
	}
}

// with returns a copy of s with more settings.
func with(s map[string]any, kv ...any) map[string]any {
	c := maps.Clone(s)
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

// without returns a copy of s without the keys.
func without(s map[string]any, keys ...string) map[string]any {
	c := maps.Clone(s)
	for _, k := range keys {
		delete(c, k)
	}
	return c
}

// rendered is one release rendered client-side.
type rendered struct {
	docs  []doc  // manifests, hooks included
	notes string // NOTES.txt
}

// doc is one rendered object.
type doc struct {
	source string // template file
	kind   string
	name   string
	text   string
}

// render installs the chart client-only (helm install --dry-run): values
// schema validation, templates, hooks and NOTES all run.
func render(t testing.TB, settings map[string]any) (*rendered, error) {
	t.Helper()
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	in := action.NewInstall(cfg)
	in.ReleaseName = releaseName
	in.Namespace = namespace
	in.DryRun = true
	in.ClientOnly = true
	in.IncludeCRDs = true
	rel, err := in.Run(loadChart(t), arc(settings))
	if err != nil {
		return nil, err
	}
	r := &rendered{notes: rel.Info.Notes}
	texts := []string{rel.Manifest}
	for _, h := range rel.Hooks {
		texts = append(texts, "# Source: "+h.Path+"\n"+h.Manifest)
	}
	for _, text := range texts {
		for _, part := range strings.Split(text, "\n---\n") {
			part = strings.TrimPrefix(strings.TrimSpace(part), "---")
			if strings.TrimSpace(part) == "" {
				continue
			}
			var meta struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(part), &meta); err != nil {
				t.Fatalf("rendered YAML does not parse: %v\n%s", err, part)
			}
			source := ""
			if i := strings.Index(part, "# Source: "); i >= 0 {
				source, _, _ = strings.Cut(part[i+len("# Source: "):], "\n")
			}
			r.docs = append(r.docs, doc{source: source, kind: meta.Kind, name: meta.Metadata.Name, text: part})
		}
	}
	return r, nil
}

// mustRender renders or fails the test.
func mustRender(t testing.TB, settings map[string]any) *rendered {
	t.Helper()
	r, err := render(t, settings)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// find returns the object of that kind and name, or nil.
func (r *rendered) find(kind, name string) *doc {
	for i := range r.docs {
		if r.docs[i].kind == kind && r.docs[i].name == name {
			return &r.docs[i]
		}
	}
	return nil
}

// decode unmarshals the object of that kind and name into out, strictly:
// a field Kubernetes does not know fails the test.
func (r *rendered) decode(t testing.TB, kind, name string, out any) {
	t.Helper()
	d := r.find(kind, name)
	if d == nil {
		t.Fatalf("no %s %s rendered; have %s", kind, name, r.list())
	}
	if err := yaml.UnmarshalStrict([]byte(d.text), out); err != nil {
		t.Fatalf("%s %s: %v\n%s", kind, name, err, d.text)
	}
}

func (r *rendered) list() string {
	var b bytes.Buffer
	for _, d := range r.docs {
		fmt.Fprintf(&b, "%s/%s ", d.kind, d.name)
	}
	return b.String()
}

func (r *rendered) deployment(t testing.TB) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	r.decode(t, "Deployment", fullname, &d)
	return &d
}

func (r *rendered) service(t testing.TB) *corev1.Service {
	t.Helper()
	var s corev1.Service
	r.decode(t, "Service", fullname, &s)
	return &s
}

func (r *rendered) secretData(t testing.TB) map[string]string {
	t.Helper()
	var s corev1.Secret
	r.decode(t, "Secret", fullname, &s)
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

func (r *rendered) configMapData(t testing.TB) map[string]string {
	t.Helper()
	var c corev1.ConfigMap
	r.decode(t, "ConfigMap", fullname+"-settings", &c)
	return c.Data
}

func container(t testing.TB, d *appsv1.Deployment, name string) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == name {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("no container %q", name)
	return nil
}

func volume(d *appsv1.Deployment, name string) *corev1.Volume {
	for i := range d.Spec.Template.Spec.Volumes {
		if d.Spec.Template.Spec.Volumes[i].Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

func mount(c *corev1.Container, name string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == name {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func env(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

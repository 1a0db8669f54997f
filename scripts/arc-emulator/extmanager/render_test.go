package extmanager

import (
	"encoding/base64"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"sigs.k8s.io/yaml"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
	"github.com/seed393f6fe3/apim-arc-gateway/scripts/release-train/manifest"
)

// The values the emulator builds are the values the real chart expects:
// rendered client-side (helm install --dry-run, values schema included),
// the protected token lands in the chart's Secret and nowhere else, and
// the plain settings and injected Azure.* values reach the ConfigMap.
func TestValuesRenderRealChart(t *testing.T) {
	m, err := manifest.Read("../../../extension-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	c := &Catalog{Manifest: m, Schema: schema}
	req := baseCreate()
	req.ReleaseTrain = "preview"
	_, a, err := c.PlanCreate(&State{}, req, t0)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load("../../../" + m.Chart.Path)
	if err != nil {
		t.Fatal(err)
	}
	in := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	in.ReleaseName, in.Namespace = a.Release, a.Namespace
	in.DryRun, in.ClientOnly = true, true
	rel, err := in.Run(ch, a.Values)
	if err != nil {
		t.Fatalf("the chart refuses the emulator's values: %v", err)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(token))
	var secretHasToken, configMapOK bool
	texts := []string{rel.Manifest, rel.Info.Notes}
	for _, h := range rel.Hooks {
		texts = append(texts, h.Manifest)
	}
	for _, text := range texts {
		for _, part := range strings.Split(text, "\n---\n") {
			if strings.Contains(part, token) {
				t.Errorf("the token appears in clear text:\n%s", part)
			}
			var obj struct {
				Kind string            `json:"kind"`
				Data map[string]string `json:"data"`
			}
			if yaml.Unmarshal([]byte(part), &obj) != nil {
				continue
			}
			switch {
			case obj.Kind == "Secret" && obj.Data["gateway.auth.token"] == b64:
				secretHasToken = true
			case strings.Contains(part, b64):
				t.Errorf("the token appears outside its Secret:\n%s", part)
			case obj.Kind == "ConfigMap" && obj.Data["service.type"] == "NodePort":
				configMapOK = strings.Contains(part, "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Kubernetes/connectedClusters/arc1")
			}
		}
	}
	if !secretHasToken {
		t.Error("no Secret holds gateway.auth.token")
	}
	if !configMapOK {
		t.Error("no ConfigMap holds service.type and the injected cluster id")
	}
}

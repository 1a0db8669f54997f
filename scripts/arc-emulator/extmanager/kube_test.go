package extmanager

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/kubetest"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
	"github.com/seed393f6fe3/apim-arc-gateway/scripts/release-train/manifest"
)

// chartSecret returns the chart's protected-settings Secret in ns (not
// Helm's release records), or nil.
func chartSecret(t *testing.T, c kubernetes.Interface, ns string) *corev1.Secret {
	t.Helper()
	list, err := c.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=apim"})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range list.Items {
		if s.Type == corev1.SecretTypeOpaque && !strings.Contains(s.Name, "proxy") {
			return &list.Items[i]
		}
	}
	return nil
}

func chartConfigMaps(t *testing.T, c kubernetes.Interface, ns string) int {
	t.Helper()
	list, err := c.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=apim"})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// Create, update, show, auto-upgrade and delete against a real API server
// with the real chart (installed without waiting: no pods run there).
func TestManagerAgainstAPIServer(t *testing.T) {
	env := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()

	// The chart at 0.1.0 and a 0.1.1 build of it, and a manifest whose
	// preview train offers only 0.1.0 for now.
	charts := filepath.Join(dir, "charts")
	for _, v := range []string{"", "0.1.1"} {
		if _, err := manifest.Package("../../../charts/apim-gateway", charts, manifest.PackageOptions{Version: v, AppVersion: v}); err != nil {
			t.Fatal(err)
		}
	}
	manifestData, err := os.ReadFile("../../../extension-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(manifestData)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	mgr := &Manager{
		Catalog:   &Catalog{Manifest: m, Schema: schema},
		Store:     Store{Path: filepath.Join(dir, "state.json")},
		ChartsDir: charts,
		Kube:      Kube{Atomic: false, Timeout: time.Minute},
	}

	// A create the chart refuses (Entra app without its secret) leaves a
	// Failed instance whose error names the setting, not the token.
	req := baseCreate()
	req.ReleaseTrain = "preview"
	req.Cluster.Kubeconfig = env.Kubeconfig
	req.Settings["gateway.auth.type"] = "AzureAdApp"
	req.Settings["gateway.name"] = "gw1"
	req.Settings["gateway.auth.azureAd.tenant.id"] = "tenant"
	req.Settings["gateway.auth.azureAd.app.id"] = "app"
	e, err := mgr.Create(ctx, req)
	if err == nil || e == nil || e.ProvisioningState != "Failed" || !strings.Contains(err.Error(), "gateway.auth.azureAd.app.secret") {
		t.Fatalf("create refused by the chart: %v", err)
	}
	if strings.Contains(err.Error(), "c2VjcmV0LXNpZ25hdHVyZQ") {
		t.Errorf("the error leaks the token: %v", err)
	}
	// Updating it installs the release Arc could not install before.
	e, _, err = mgr.Update(ctx, UpdateRequest{Ref: gw, Settings: map[string]string{"gateway.auth.type": "GatewayToken"},
		Protected: map[string]string{"gateway.auth.token": token}})
	if err != nil {
		t.Fatalf("update after a failed create: %v", err)
	}
	if e.ProvisioningState != "Succeeded" || e.CurrentVersion != "0.1.0" {
		t.Fatalf("after update: %s %s %s", e.ProvisioningState, e.CurrentVersion, e.ErrorMessage)
	}
	sec := chartSecret(t, env.Client, "apim")
	if sec == nil || string(sec.Data["gateway.auth.token"]) != token {
		t.Fatalf("the chart's Secret does not hold the token: %v", sec)
	}

	if n := chartConfigMaps(t, env.Client, "apim"); n == 0 {
		t.Errorf("the release created no ConfigMap")
	}

	shown, err := mgr.Show(gw)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(shown.Resource())
	if strings.Contains(string(out), "c2VjcmV0LXNpZ25hdHVyZQ") || !strings.Contains(string(out), `"gateway.auth.token":null`) {
		t.Errorf("show: %s", out)
	}

	// An update that does not send the token again deletes it.
	_, deleted, err := mgr.Update(ctx, UpdateRequest{Ref: gw, Settings: map[string]string{"gateway.configuration.uri": "file:///apim/config/snapshot.json"}})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if !slices.Equal(deleted, []string{"gateway.auth.token"}) {
		t.Errorf("deleted = %v", deleted)
	}
	if sec := chartSecret(t, env.Client, "apim"); sec != nil && sec.Data["gateway.auth.token"] != nil {
		t.Errorf("the token survived an update that did not send it")
	}

	// Sending it again brings it back.
	if _, _, err := mgr.Update(ctx, UpdateRequest{Ref: gw, Protected: map[string]string{"gateway.auth.token": token + "2"}}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if sec := chartSecret(t, env.Client, "apim"); sec == nil || string(sec.Data["gateway.auth.token"]) != token+"2" {
		t.Fatalf("the new token is not in the Secret")
	}

	// 0.1.1 is published on preview: the auto-upgrade pass moves the
	// instance there and re-delivers the protected settings.
	edited, err := manifest.Add(manifestData, "preview", manifest.Version{Version: "0.1.1", ChartVersion: "0.1.1", AppVersion: "0.1.1", MinKubernetesVersion: "1.28", AutoUpgradeTarget: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if mgr.Catalog.Manifest, err = manifest.Parse(edited); err != nil {
		t.Fatal(err)
	}
	done, err := mgr.Reconcile(ctx, gw)
	if err != nil || !slices.Equal(done, []string{"apim: 0.1.0 -> 0.1.1"}) {
		t.Fatalf("reconcile: %v %v", done, err)
	}
	if sec := chartSecret(t, env.Client, "apim"); sec == nil || string(sec.Data["gateway.auth.token"]) != token+"2" {
		t.Fatalf("the token was lost in the auto-upgrade")
	}
	vals, err := mgr.kubeFor(e).ReleaseValues("apim", "apim")
	if err != nil || lookupPath(vals, "Azure.Extension.Version") != "0.1.1" {
		t.Errorf("release values after auto-upgrade: %v %v", lookupPath(vals, "Azure.Extension.Version"), err)
	}

	if err := mgr.Delete(ctx, gw); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if sec := chartSecret(t, env.Client, "apim"); sec != nil {
		t.Errorf("delete left the Secret %s", sec.Name)
	}
	if n := chartConfigMaps(t, env.Client, "apim"); n != 0 {
		t.Errorf("delete left %d ConfigMaps of the release", n)
	}
	if _, err := mgr.Show(gw); err == nil {
		t.Errorf("show after delete found the instance")
	}
}

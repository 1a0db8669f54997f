package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestArcEmulator installs the extension the way users do, through the Arc
// emulator's `az k8s-extension` commands: create from the preview train
// pinned to 0.1.0 with the token in protected settings, show, update with a
// new token (sent again, as Arc requires), update to the next pinned version
// under load with zero failed requests, delete. scripts/k8s/e2e.sh gives the
// emulator a manifest whose preview train lists 0.1.0 and 0.1.1.
func TestArcEmulator(t *testing.T) {
	c := requireCluster(t)
	emulator := os.Getenv("E2E_ARC_EMULATOR")
	if emulator == "" {
		t.Skip("E2E_ARC_EMULATOR is not set (scripts/arc-emulator not built by scripts/k8s/e2e.sh)")
	}
	ns := c.namespace(t, "e2e-arc")
	tok1 := token(t)
	ep := c.endpoint(t, tok1, "arc-1")
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ep.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	jsonFile := func(name string, v map[string]string) string {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	az := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		args = append(args, "--name", "apim", "--cluster-name", "e2e", "--resource-group", "rg",
			"--cluster-type", "connectedClusters", "--kubeconfig", c.kubeconfig, "--state", state,
			"--charts", os.Getenv("E2E_ARC_CHARTS"), "--manifest", os.Getenv("E2E_ARC_MANIFEST"), "--helm-timeout", "5m")
		out, err := exec.CommandContext(ctx, emulator, args...).CombinedOutput()
		return string(out), err
	}
	r := &release{c: c, name: "apim", ns: ns}
	t.Cleanup(func() {
		if t.Failed() {
			r.dump(t)
		}
	})
	// No image.tag: each chart version runs its own appVersion's image.
	config := map[string]string{
		"gateway.configuration.uri": ep.URL(),
		"image.repository":          c.imageRepo,
		"replicaCount":              "2",
		"service.type":              "ClusterIP",
	}
	out, err := az("create", "--extension-type", "Microsoft.ApiManagement.Gateway",
		"--release-train", "preview", "--version", "0.1.0", "--auto-upgrade-minor-version", "false",
		"--target-namespace", ns, "--proxy-cert", caFile,
		"--configuration-settings-file", jsonFile("settings.json", config),
		"--config-protected-settings-file", jsonFile("protected.json", map[string]string{"gateway.auth.token": tok1}))
	if err != nil {
		t.Fatalf("arc-emulator create: %v\n%s", err, out)
	}

	svc := arcService(t, c, ns)
	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "8080") + "/hello/ping"
	eventually(t, 60*time.Second, "GET "+url, func() error { return expectBody(url, "arc-1") })

	out, err = az("show")
	if err != nil {
		t.Fatalf("arc-emulator show: %v\n%s", err, out)
	}
	// az prints the resource flattened: properties at the top level.
	var shown struct {
		ProvisioningState              string            `json:"provisioningState"`
		ReleaseTrain                   string            `json:"releaseTrain"`
		ConfigurationProtectedSettings map[string]any    `json:"configurationProtectedSettings"`
		ConfigurationSettings          map[string]string `json:"configurationSettings"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("show output is not the extension resource JSON: %v\n%s", err, out)
	}
	if shown.ProvisioningState != "Succeeded" || !strings.EqualFold(shown.ReleaseTrain, "preview") {
		t.Fatalf("provisioningState %q releaseTrain %q after create:\n%s", shown.ProvisioningState, shown.ReleaseTrain, out)
	}
	// Like ARM, show names protected settings but never returns them.
	if _, ok := shown.ConfigurationProtectedSettings["gateway.auth.token"]; !ok || strings.Contains(out, strings.TrimPrefix(tok1, "GatewayKey ")) {
		t.Fatalf("show must list gateway.auth.token without its value:\n%s", out)
	}

	// update: protected settings must be sent again; the new token must
	// reach the running agent.
	tok2 := token(t)
	ep.SetTokens(tok1, tok2)
	out, err = az("update", "--config-protected-settings-file", jsonFile("protected2.json", map[string]string{"gateway.auth.token": tok2}))
	if err != nil {
		t.Fatalf("arc-emulator update: %v\n%s", err, out)
	}
	eventually(t, 3*time.Minute, "the agent to use the new token", func() error {
		if ep.AuthenticatedWith(tok2) == 0 {
			return fmt.Errorf("no request with the new token yet")
		}
		return nil
	})
	ep.SetTokens(tok2)
	ep.SetSnapshot(snapshot(t, "arc-2"))
	eventually(t, 2*time.Minute, "GET "+url, func() error { return expectBody(url, "arc-2") })

	// The next pinned version: pods roll to its image, no request fails.
	l := startLoad(t, []string{url})
	out, err = az("update", "--version", "0.1.1",
		"--config-protected-settings-file", jsonFile("protected3.json", map[string]string{"gateway.auth.token": tok2}))
	if err != nil {
		t.Fatalf("arc-emulator update --version 0.1.1: %v\n%s", err, out)
	}
	eventually(t, 2*time.Minute, "all pods on 0.1.1", func() error {
		pods := r.pods(t)
		if len(pods) != 2 {
			return fmt.Errorf("%d pods", len(pods))
		}
		for _, p := range pods {
			if img := p.Spec.Containers[0].Image; !strings.HasSuffix(img, ":0.1.1") || !podReady(p) {
				return fmt.Errorf("pod %s runs %s ready=%v", p.Name, img, podReady(p))
			}
		}
		return nil
	})
	l.stop(t, true)
	eventually(t, 60*time.Second, "GET "+url, func() error { return expectBody(url, "arc-2") })

	if out, err := az("delete", "--yes"); err != nil {
		t.Fatalf("arc-emulator delete: %v\n%s", err, out)
	}
	eventually(t, 2*time.Minute, "no object of the extension left", func() error { return r.leftovers() })
}

// arcService finds the traffic Service the emulator's install created.
func arcService(t *testing.T, c *cluster, ns string) *corev1.Service {
	t.Helper()
	list, err := c.client.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if list.Items[i].Spec.ClusterIP != corev1.ClusterIPNone {
			return &list.Items[i]
		}
	}
	t.Fatalf("no traffic Service in %s", ns)
	return nil
}

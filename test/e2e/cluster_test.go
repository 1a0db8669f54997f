// Package e2e proves the chart, the image and the agent on a real
// single-node Kubernetes cluster (scripts/k8s/cluster.sh): install, traffic
// through ClusterIP and NodePort, helm test, service types, the restricted
// Pod Security profile, fail-static backup on a PVC, live token update,
// zero-downtime upgrade, rollback and delete.
//
// `make e2e` builds everything, starts the cluster inside its network
// namespace and runs these tests from inside it. Without E2E_KUBECONFIG
// (`go test ./...`, `make test`) every test here skips.
//
// Installs go through the helm binary with the values Arc would pass (the
// dotted settings keys, protected ones included): the Arc emulator
// (scripts/arc-emulator) did not exist when these were written.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/seed393f6fe3/apim-arc-gateway/test/e2e/fakeconfig"
)

// gatewayName is the gateway the tokens name and the fake endpoint serves.
const gatewayName = "gw-e2e"

// cluster is the running e2e cluster, as scripts/k8s/e2e.sh describes it
// in the environment.
type cluster struct {
	kubeconfig string
	client     kubernetes.Interface
	helmBin    string
	chart      string
	imageRepo  string
	nodeIP     string
	workDir    string
}

func requireCluster(t *testing.T) *cluster {
	t.Helper()
	kc := os.Getenv("E2E_KUBECONFIG")
	if kc == "" {
		t.Skip("E2E_KUBECONFIG is not set: these tests need the real cluster of `make e2e` (root)")
	}
	need := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			t.Fatalf("%s is not set (scripts/k8s/e2e.sh sets it with E2E_KUBECONFIG)", name)
		}
		return v
	}
	c := &cluster{
		kubeconfig: kc,
		helmBin:    need("E2E_HELM"),
		chart:      need("E2E_CHART"),
		imageRepo:  need("E2E_IMAGE_REPOSITORY"),
		nodeIP:     need("E2E_NODE_IP"),
		workDir:    need("E2E_WORK_DIR"),
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatalf("load %s: %v", kc, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	if c.client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return c
}

// helm runs the helm binary against the cluster and returns its combined
// output.
func (c *cluster) helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	home := filepath.Join(c.workDir, "helm")
	cmd := exec.CommandContext(ctx, c.helmBin, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// namespace creates a namespace that enforces the restricted Pod Security
// profile: every pod the chart creates must pass it.
func (c *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	_, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name,
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
			"pod-security.kubernetes.io/warn":            "restricted",
		},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = c.client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// token makes a gateway token for gatewayName that expires in 20 days.
func token(t *testing.T) string {
	t.Helper()
	sig := make([]byte, 32)
	if _, err := rand.Read(sig); err != nil {
		t.Fatal(err)
	}
	expiry := time.Now().UTC().Add(20 * 24 * time.Hour).Format("200601021504")
	return "GatewayKey " + gatewayName + "&" + expiry + "&" + base64.StdEncoding.EncodeToString(sig)
}

// snapshot is testdata/snapshot.json with its revision (which is also what
// GET /hello/ping answers) set.
func snapshot(t *testing.T, revision string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(data, []byte("REVISION"), []byte(revision))
}

// endpoint starts a fake configuration endpoint on the node IP, where pods
// reach it, serving revision.
func (c *cluster) endpoint(t *testing.T, tok, revision string) *fakeconfig.Server {
	t.Helper()
	s, err := fakeconfig.Start(net.JoinHostPort(c.nodeIP, "0"), gatewayName, []string{tok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.SetSnapshot(snapshot(t, revision))
	return s
}

// release is one install of the chart.
type release struct {
	c    *cluster
	name string
	ns   string
}

// settings are Arc settings: dotted keys, as --configuration-settings and
// --config-protected-settings pass them.
type settings map[string]any

// baseSettings are what every install passes: the endpoint, its token, the
// e2e image and, through Arc's proxy CA setting, trust in the fake
// endpoint's CA.
func (c *cluster) baseSettings(s *fakeconfig.Server, tok string) settings {
	return settings{
		"gateway.configuration.uri":     s.URL(),
		"gateway.auth.token":            tok,
		"image.repository":              c.imageRepo,
		"image.tag":                     "e2e",
		"image.pullPolicy":              "IfNotPresent",
		"replicaCount":                  1,
		"Azure.proxySettings.proxyCert": string(s.CAPEM()),
	}
}

func (s settings) with(more settings) settings {
	out := settings{}
	for k, v := range s {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// valuesFile writes the settings as a Helm values file, each dotted key
// a value path (what Arc does with them).
func (r *release) valuesFile(t *testing.T, s settings) string {
	t.Helper()
	root := map[string]any{}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts := strings.Split(k, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = s[k]
	}
	data, err := yaml.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// install runs helm install (with --wait when wait) and fails the test,
// with the cluster's view of the namespace, when it fails.
func (r *release) install(t *testing.T, s settings, wait bool) {
	t.Helper()
	args := []string{"install", r.name, r.c.chart, "-n", r.ns, "-f", r.valuesFile(t, s)}
	if wait {
		args = append(args, "--wait", "--timeout", "5m")
	}
	if out, err := r.c.helm(t, args...); err != nil {
		r.dump(t)
		t.Fatalf("helm install %s: %v\n%s", r.name, err, out)
	}
}

func (r *release) upgrade(t *testing.T, s settings) {
	t.Helper()
	if out, err := r.c.helm(t, "upgrade", r.name, r.c.chart, "-n", r.ns, "-f", r.valuesFile(t, s), "--wait", "--timeout", "5m"); err != nil {
		r.dump(t)
		t.Fatalf("helm upgrade %s: %v\n%s", r.name, err, out)
	}
}

func (r *release) selector() string { return "app.kubernetes.io/instance=" + r.name }

// service is the release's traffic Service (not the headless one).
func (r *release) service(t *testing.T) *corev1.Service {
	t.Helper()
	list, err := r.c.client.CoreV1().Services(r.ns).List(context.Background(), metav1.ListOptions{LabelSelector: r.selector()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		if list.Items[i].Spec.ClusterIP != corev1.ClusterIPNone {
			return &list.Items[i]
		}
	}
	t.Fatalf("release %s has no traffic Service (found %d Services)", r.name, len(list.Items))
	return nil
}

// pods returns the release's gateway pods that are not being deleted.
func (r *release) pods(t *testing.T) []corev1.Pod {
	t.Helper()
	list, err := r.c.client.CoreV1().Pods(r.ns).List(context.Background(), metav1.ListOptions{LabelSelector: r.selector()})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Labels["app.kubernetes.io/component"] != "test" {
			out = append(out, p)
		}
	}
	return out
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// dump logs what a person debugging a failure needs: pods, events and the
// containers' logs of the release's namespace.
func (r *release) dump(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	pods, err := r.c.client.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("dump: list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s phase=%s ready=%v", p.Name, p.Status.Phase, podReady(p))
		for _, cs := range p.Status.ContainerStatuses {
			t.Logf("  container %s ready=%v restarts=%d state=%+v", cs.Name, cs.Ready, cs.RestartCount, cs.State)
			for _, previous := range []bool{false, true} {
				if previous && cs.RestartCount == 0 {
					continue
				}
				raw, err := r.c.client.CoreV1().Pods(r.ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: cs.Name, TailLines: ptr(int64(40)), Previous: previous}).DoRaw(ctx)
				if err == nil {
					t.Logf("  logs %s/%s (previous=%v):\n%s", p.Name, cs.Name, previous, raw)
				}
			}
		}
	}
	events, err := r.c.client.CoreV1().Events(r.ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, e := range events.Items {
			t.Logf("event %s %s/%s: %s %s", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// eventually retries f until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// get fetches url on a new connection and returns the status and body.
func get(url string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// expectBody fails unless url answers 200 with body.
func expectBody(url, body string) error {
	code, got, err := get(url)
	if err != nil {
		return err
	}
	if code != http.StatusOK || got != body {
		return fmt.Errorf("GET %s: %d %q, want 200 %q", url, code, got, body)
	}
	return nil
}

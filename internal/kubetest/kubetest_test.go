package kubetest_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/seed393f6fe3/apim-arc-gateway/internal/kubetest"
)

// One control plane serves the whole file: starting one costs seconds.
func TestControlPlane(t *testing.T) {
	env := kubetest.Start(t)

	t.Run("secret round trip", func(t *testing.T) {
		ctx := context.Background()
		ns := env.CreateNamespace(t, "secrets")
		secrets := env.Client.CoreV1().Secrets(ns)
		_, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "gateway-token"},
			Data:       map[string][]byte{"gateway.auth.token": []byte("GatewayKey gw&202601010000&old")},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create secret: %v", err)
		}
		got, err := secrets.Get(ctx, "gateway-token", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("read secret: %v", err)
		}
		if v := string(got.Data["gateway.auth.token"]); v != "GatewayKey gw&202601010000&old" {
			t.Fatalf("read back %q", v)
		}
		got.Data["gateway.auth.token"] = []byte("GatewayKey gw&202602010000&new")
		if _, err := secrets.Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update secret: %v", err)
		}
		again, err := secrets.Get(ctx, "gateway-token", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("read updated secret: %v", err)
		}
		if v := string(again.Data["gateway.auth.token"]); v != "GatewayKey gw&202602010000&new" {
			t.Fatalf("after update read %q", v)
		}
		if again.ResourceVersion == got.ResourceVersion {
			t.Fatalf("resourceVersion unchanged by the update (%s): the write did not reach etcd", got.ResourceVersion)
		}
		// A stale write is refused, as a real API server does: this is what
		// a writer racing another (token rotation on two replicas) meets.
		got.Data["gateway.auth.token"] = []byte("stale")
		if _, err := secrets.Update(ctx, got, metav1.UpdateOptions{}); err == nil {
			t.Fatal("update with a stale resourceVersion succeeded; want a conflict")
		}
	})

	t.Run("kubeconfig file", func(t *testing.T) {
		cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
		if err != nil {
			t.Fatalf("load %s: %v", env.Kubeconfig, err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		v, err := client.Discovery().ServerVersion()
		if err != nil {
			t.Fatalf("server version through the kubeconfig: %v", err)
		}
		if !strings.HasPrefix(v.GitVersion, "v1.") {
			t.Fatalf("server version %q; the binaries were built without version ldflags", v.GitVersion)
		}
		if _, err := client.CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{}); err != nil {
			t.Fatalf("default namespace: %v", err)
		}
	})

	t.Run("CRD", func(t *testing.T) {
		manifest, err := os.ReadFile("testdata/azureclusteridentityrequests.yaml")
		if err != nil {
			t.Fatal(err)
		}
		env.ApplyCRD(t, manifest)
		// Applying again replaces it in place.
		env.ApplyCRD(t, manifest)

		ns := env.CreateNamespace(t, "identity")
		dyn, err := dynamic.NewForConfig(env.RESTConfig)
		if err != nil {
			t.Fatal(err)
		}
		requests := dyn.Resource(schema.GroupVersionResource{
			Group: "clusterconfig.azure.com", Version: "v1beta1", Resource: "azureclusteridentityrequests",
		}).Namespace(ns)
		req := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "clusterconfig.azure.com/v1beta1",
			"kind":       "AzureClusterIdentityRequest",
			"metadata":   map[string]any{"name": "apim-gateway"},
			"spec":       map[string]any{"audience": "https://azure-api.net/configuration", "resourceId": "apim"},
		}}
		ctx := context.Background()
		if _, err := requests.Create(ctx, req, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create AzureClusterIdentityRequest: %v", err)
		}
		// The schema is enforced server-side: audience is required.
		bad := req.DeepCopy()
		bad.SetName("no-audience")
		unstructured.RemoveNestedField(bad.Object, "spec", "audience")
		if _, err := requests.Create(ctx, bad, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "audience") {
			t.Fatalf("create without spec.audience: err = %v, want a validation error naming audience", err)
		}
		// Status is a subresource, written the way Arc answers a request.
		got, err := requests.Get(ctx, "apim-gateway", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(got.Object, "identity-token", "status", "tokenReference", "secretName"); err != nil {
			t.Fatal(err)
		}
		if _, err := requests.UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update status: %v", err)
		}
		got, err = requests.Get(ctx, "apim-gateway", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if name, _, _ := unstructured.NestedString(got.Object, "status", "tokenReference", "secretName"); name != "identity-token" {
			t.Fatalf("status.tokenReference.secretName = %q after UpdateStatus", name)
		}
	})

	t.Run("ApplyCRD rejects other kinds", func(t *testing.T) {
		fake := &recordingTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			env.ApplyCRD(fake, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"))
		}()
		<-done
		if !strings.Contains(fake.fatal, "want apiextensions.k8s.io/v1 CustomResourceDefinition") {
			t.Fatalf("ApplyCRD on a ConfigMap: fatal = %q", fake.fatal)
		}
	})
}

// TestControllerManagerAndStop runs the controller manager (a new namespace
// gets its default ServiceAccount, which pods and helm test hooks need) and
// checks that a finished test leaves no daemon behind: the API server's port
// stops answering once the subtest's cleanups ran.
func TestControllerManagerAndStop(t *testing.T) {
	var host string
	t.Run("run", func(t *testing.T) {
		env := kubetest.Start(t, kubetest.WithControllerManager())
		host = strings.TrimPrefix(env.RESTConfig.Host, "https://")
		ns := env.CreateNamespace(t, "sa")
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, err := env.Client.CoreV1().ServiceAccounts(ns).Get(context.Background(), "default", metav1.GetOptions{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no default ServiceAccount in %s after 60s: %v", ns, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	if host == "" {
		t.Skip("control plane did not start")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver still listening on %s after its test ended", host)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recordingTB captures Fatalf instead of ending the test, so a helper's
// failure message can be asserted.
type recordingTB struct {
	testing.TB
	fatal string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

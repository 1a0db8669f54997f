package credentials_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/credentials"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/kubetest"
	"github.com/seed393f6fe3/apim-arc-gateway/internal/logcapture"
)

// Tests against a real kube-apiserver (skipped without KUBE_BIN_DIR). One
// control plane serves them all: starting one costs seconds.
func TestKubernetes(t *testing.T) {
	env := kubetest.Start(t)
	crd, err := os.ReadFile("testdata/azureclusteridentityrequests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env.ApplyCRD(t, crd)
	t.Run("ExtensionIdentity", func(t *testing.T) { testExtensionIdentity(t, env) })
	t.Run("ExtensionIdentityNotAnswered", func(t *testing.T) { testExtensionIdentityNotAnswered(t, env) })
	t.Run("RotatorWritesSecret", func(t *testing.T) { testRotatorWritesSecret(t, env) })
	t.Run("RotatorRetriesWriteBack", func(t *testing.T) { testRotatorRetriesWriteBack(t, env) })
}

// clock is a settable test clock shared by the credential and the operator.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// identityOperator plays Arc's clusteridentityoperator: for every
// AzureClusterIdentityRequest whose status has no expirationTime it writes a
// token into a Secret and points the status at it.
type identityOperator struct {
	dyn      dynamic.Interface
	env      *kubetest.Env
	ns       string
	clock    *clock
	lifetime time.Duration

	mu     sync.Mutex
	issued map[string][]string // request name -> tokens issued, in order
}

func startIdentityOperator(t *testing.T, env *kubetest.Env, ns string, c *clock) *identityOperator {
	dyn, err := dynamic.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	op := &identityOperator{dyn: dyn, env: env, ns: ns, clock: c, lifetime: 24 * time.Hour, issued: map[string][]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := op.reconcile(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("identity operator: %v", err)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(30 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return op
}

func (op *identityOperator) reconcile(ctx context.Context) error {
	ri := op.dyn.Resource(credentials.IdentityRequestGVR).Namespace(op.ns)
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range list.Items {
		req := &list.Items[i]
		if exp, _, _ := unstructured.NestedString(req.Object, "status", "expirationTime"); exp != "" {
			continue
		}
		name := req.GetName()
		op.mu.Lock()
		token := fmt.Sprintf("arc-token-%s-%d", name, len(op.issued[name])+1)
		op.issued[name] = append(op.issued[name], token)
		op.mu.Unlock()
		secretName := name + "-token"
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: op.ns}, Data: map[string][]byte{"cluster-identity-token": []byte(token)}}
		secrets := op.env.Client.CoreV1().Secrets(op.ns)
		if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
			_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
			if err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		status := map[string]any{
			"tokenReference": map[string]any{"secretName": secretName, "dataName": "cluster-identity-token"},
			"expirationTime": op.clock.Now().Add(op.lifetime).UTC().Format(time.RFC3339),
		}
		if err := unstructured.SetNestedMap(req.Object, status, "status"); err != nil {
			return err
		}
		if _, err := ri.UpdateStatus(ctx, req, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

func (op *identityOperator) tokens(name string) []string {
	op.mu.Lock()
	defer op.mu.Unlock()
	return append([]string(nil), op.issued[name]...)
}

func testExtensionIdentity(t *testing.T, env *kubetest.Env) {
	ns := env.CreateNamespace(t, "azure-arc")
	clk := &clock{}
	op := startIdentityOperator(t, env, ns, clk)
	logs := &logcapture.Buffer{}
	opts := credentials.Options{KubeConfig: env.RESTConfig, Now: clk.Now, IdentityPollInterval: 20 * time.Millisecond, IdentityWait: 20 * time.Second, Logger: zerolog.New(logs)}
	p, err := credentials.New(context.Background(), credentials.Config{AuthType: credentials.AuthExtensionIdentity, ExtensionName: "apim-gw", IdentityNamespace: ns}, opts)
	if err != nil {
		t.Fatal(err)
	}
	const name = "apim-gw-identity-request"
	h, err := p.AuthorizationHeader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := "Bearer arc-token-" + name + "-1"; h != want {
		t.Fatalf("header %q, want %q", h, want)
	}
	dyn, err := dynamic.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	req, err := dyn.Resource(credentials.IdentityRequestGVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	aud, _, _ := unstructured.NestedString(req.Object, "spec", "audience")
	res, _, _ := unstructured.NestedString(req.Object, "spec", "resourceId")
	if aud != credentials.DefaultTokenAudience || res != "apim-gw" {
		t.Fatalf("request spec audience %q resourceId %q", aud, res)
	}

	// Cached: more calls ask the operator for nothing.
	for range 5 {
		if h2, err := p.AuthorizationHeader(context.Background()); err != nil || h2 != h {
			t.Fatalf("header %q, %v; want the cached token", h2, err)
		}
	}
	if n := len(op.tokens(name)); n != 1 {
		t.Fatalf("operator issued %d tokens, want 1", n)
	}

	// Within an hour of expiry the credential asks for a new token and
	// keeps using the old one until it arrives.
	clk.Advance(23*time.Hour + 10*time.Minute)
	waitFor(t, "the renewed token", func() bool {
		h2, err := p.AuthorizationHeader(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return h2 == "Bearer arc-token-"+name+"-2"
	})
	if n := len(op.tokens(name)); n != 2 {
		t.Fatalf("operator issued %d tokens, want 2", n)
	}

	// Other audiences (ARM for token rotation) get their own request.
	armTok, err := p.TokenCredential().GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := dyn.Resource(credentials.IdentityRequestGVR).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 2 {
		t.Fatalf("%v requests, %v; want 2", len(list.Items), err)
	}
	for _, it := range list.Items {
		if it.GetName() == name {
			continue
		}
		aud, _, _ := unstructured.NestedString(it.Object, "spec", "audience")
		if aud != "https://management.azure.com" || armTok.Token != op.tokens(it.GetName())[0] {
			t.Fatalf("ARM request %s: audience %q, token %q", it.GetName(), aud, armTok.Token)
		}
	}
	for _, tok := range append(op.tokens(name), armTok.Token) {
		if strings.Contains(logs.String(), tok) {
			t.Fatalf("log leaks a token:\n%s", logs.String())
		}
	}
}

func testExtensionIdentityNotAnswered(t *testing.T, env *kubetest.Env) {
	ns := env.CreateNamespace(t, "azure-arc")
	opts := credentials.Options{KubeConfig: env.RESTConfig, IdentityPollInterval: 20 * time.Millisecond, IdentityWait: time.Second}
	p, err := credentials.New(context.Background(), credentials.Config{AuthType: credentials.AuthExtensionIdentity, ExtensionName: "apim-gw", IdentityNamespace: ns}, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.AuthorizationHeader(context.Background())
	if err == nil || !strings.Contains(err.Error(), credentials.IdentityRequestKind) || !strings.Contains(err.Error(), "status not populated") || !strings.Contains(err.Error(), "clusteridentityoperator") {
		t.Fatalf("err = %v, want one explaining the unanswered request", err)
	}
}

func newTokenSecret(t *testing.T, env *kubetest.Env, ns, name, token string) {
	t.Helper()
	_, err := env.Client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Data:       map[string][]byte{credentials.KeyToken: []byte(token), credentials.KeyClientSecret: []byte(secret)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func secretValue(t *testing.T, env *kubetest.Env, ns, name, key string) string {
	t.Helper()
	s, err := env.Client.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(s.Data[key])
}

func testRotatorWritesSecret(t *testing.T, env *kubetest.Env) {
	ns := env.CreateNamespace(t, "apim")
	f := newRotationFixture(t, 3)
	f.opts.KubeConfig = env.RESTConfig
	newTokenSecret(t, env, ns, "apim-gateway-protected", f.cfg.Token.Reveal())
	p, err := credentials.New(context.Background(), f.cfg, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := credentials.NewRotator(p, credentials.RotatorConfig{ResourceID: f.id, SecretName: "apim-gateway-protected", SecretNamespace: ns}, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RotateOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.arm.Requests()
	if len(reqs) != 1 || reqs[0].StatusCode != 200 {
		t.Fatalf("generateToken calls %+v", reqs)
	}
	want := "GatewayKey " + reqs[0].Token
	if got := secretValue(t, env, ns, "apim-gateway-protected", credentials.KeyToken); got != want {
		t.Fatalf("Secret holds %q, want the renewed token", got)
	}
	if got := secretValue(t, env, ns, "apim-gateway-protected", credentials.KeyClientSecret); got != secret {
		t.Fatal("write-back changed another key of the Secret")
	}
	if h, _ := p.AuthorizationHeader(context.Background()); h != want {
		t.Fatalf("provider uses %q, want the renewed token", h)
	}
}

// When the Secret cannot be written the agent keeps the renewed token and
// retries the write, without asking ARM for yet another token.
func testRotatorRetriesWriteBack(t *testing.T, env *kubetest.Env) {
	ns := env.CreateNamespace(t, "apim")
	f := newRotationFixture(t, 3)
	f.opts.KubeConfig = env.RESTConfig
	p, err := credentials.New(context.Background(), f.cfg, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := credentials.NewRotator(p, credentials.RotatorConfig{ResourceID: f.id, SecretName: "late-secret", SecretNamespace: ns, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond}, f.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the failed write-back to be logged", func() bool {
		return strings.Contains(f.logs.String(), "writing the renewed gateway token to Secret "+ns+"/late-secret")
	})
	if time.Until(p.ExpiresAt()) < 29*24*time.Hour {
		t.Fatal("the renewed token is not in use while the write-back fails")
	}
	newTokenSecret(t, env, ns, "late-secret", f.cfg.Token.Reveal())
	want := "GatewayKey " + f.arm.Requests()[0].Token
	waitFor(t, "the write-back retry", func() bool { return secretValue(t, env, ns, "late-secret", credentials.KeyToken) == want })
	if n := len(f.arm.Requests()); n != 1 {
		t.Fatalf("%d generateToken calls, want 1", n)
	}
	if strings.Contains(f.logs.String(), f.arm.Requests()[0].Token) {
		t.Fatalf("log leaks the renewed token:\n%s", f.logs.String())
	}
}

package credentials

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// IdentityRequestGVR is Arc's AzureClusterIdentityRequest resource: the
// extension asks for a token of an audience; Arc's identity operator answers
// in status.tokenReference (a Secret and its key) and status.expirationTime.
var IdentityRequestGVR = schema.GroupVersionResource{Group: "clusterconfig.azure.com", Version: "v1beta1", Resource: "azureclusteridentityrequests"}

// IdentityRequestKind is the kind of IdentityRequestGVR.
const IdentityRequestKind = "AzureClusterIdentityRequest"

// identityMinValidity: a token closer than this to its expiry is not handed
// out (the same margin MSAL uses for its cache).
const identityMinValidity = 5 * time.Minute

// clusterIdentity is an azcore.TokenCredential backed by the Arc extension's
// managed identity: one AzureClusterIdentityRequest per audience.
type clusterIdentity struct {
	dyn        dynamic.Interface
	core       kubernetes.Interface
	namespace  string
	baseName   string
	mainAud    string
	resourceID string
	opts       Options

	mu    sync.Mutex
	cache map[string]*identityToken // by audience
}

type identityToken struct {
	token          string
	expires        time.Time
	checkedAt      time.Time
	renewRequested time.Time
}

func newClusterIdentity(cfg Config, opts Options) (*clusterIdentity, error) {
	rc, err := opts.kubeConfig()
	if err != nil {
		return nil, fmt.Errorf("%s ExtensionIdentity: %w", KeyAuthType, err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%s ExtensionIdentity: %w", KeyAuthType, err)
	}
	core, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%s ExtensionIdentity: %w", KeyAuthType, err)
	}
	ns := cfg.IdentityNamespace
	if ns == "" {
		ns = DefaultIdentityNamespace
	}
	name := cfg.IdentityRequestName
	if name == "" {
		name = dnsName(cfg.ExtensionName) + "-identity-request"
	}
	return &clusterIdentity{
		dyn: dyn, core: core, namespace: ns, baseName: name,
		mainAud: audienceOrDefault(cfg.TokenAudience), resourceID: cfg.ExtensionName,
		opts: opts, cache: map[string]*identityToken{},
	}, nil
}

// dnsName lower-cases s and replaces what a Kubernetes name cannot hold.
func dnsName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-.")
	if len(out) > 200 {
		out = out[:200]
	}
	if out == "" {
		out = "apim-gateway"
	}
	return out
}

// requestName is the request for aud: the configured name for the
// configuration endpoint's audience, a suffixed one for any other (ARM).
func (c *clusterIdentity) requestName(aud string) string {
	if aud == c.mainAud {
		return c.baseName
	}
	sum := sha256.Sum256([]byte(aud))
	return c.baseName + "-" + hex.EncodeToString(sum[:4])
}

func (c *clusterIdentity) pollInterval() time.Duration {
	if c.opts.IdentityPollInterval > 0 {
		return c.opts.IdentityPollInterval
	}
	return time.Second
}

func (c *clusterIdentity) renewBefore() time.Duration {
	if c.opts.IdentityRenewBefore > 0 {
		return c.opts.IdentityRenewBefore
	}
	return time.Hour
}

func (c *clusterIdentity) maxWait() time.Duration {
	if c.opts.IdentityWait > 0 {
		return c.opts.IdentityWait
	}
	return 2 * time.Minute
}

// audienceOf turns a "<audience>/.default" scope back into the audience.
func audienceOf(scopes []string) (string, error) {
	if len(scopes) != 1 {
		return "", fmt.Errorf("%s ExtensionIdentity: exactly one scope is supported, got %d", KeyAuthType, len(scopes))
	}
	return strings.TrimSuffix(scopes[0], "/.default"), nil
}

// GetToken returns the extension identity's token for the scope's audience.
// A cached token is used until renewBefore of its expiry; then the request's
// status expirationTime is cleared, which is how Arc's identity operator is
// asked for a new token, and the old token is used until the new one lands.
func (c *clusterIdentity) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	aud, err := audienceOf(o.Scopes)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cached := c.cache[aud]
	now := c.opts.now()
	if cached != nil && (cached.expires.Sub(now) > c.renewBefore() || (cached.expires.Sub(now) > identityMinValidity && now.Sub(cached.checkedAt) < c.pollInterval())) {
		return azcore.AccessToken{Token: cached.token, ExpiresOn: cached.expires}, nil
	}
	name := c.requestName(aud)
	ctx, cancel := context.WithTimeout(ctx, c.maxWait())
	defer cancel()
	var last, lastErr string
	for {
		tok, state, err := c.check(ctx, name, aud)
		now = c.opts.now()
		switch {
		case err != nil && ctx.Err() != nil:
			// the wait ran out during the call: report the last state seen
		case err != nil:
			lastErr = err.Error()
		case tok != nil:
			prev := cached
			if prev != nil && prev.token != tok.token {
				c.opts.Logger.Info().Str("request", c.namespace+"/"+name).Time("expiresAt", tok.expires).Msg("extension identity token renewed")
			}
			if prev != nil && prev.token == tok.token {
				tok.renewRequested = prev.renewRequested
			}
			tok.checkedAt = now
			c.cache[aud], cached = tok, tok
			if tok.expires.Sub(now) > c.renewBefore() {
				return azcore.AccessToken{Token: tok.token, ExpiresOn: tok.expires}, nil
			}
			last = "token expires at " + tok.expires.UTC().Format(time.RFC3339)
		default:
			last = state
		}
		if err == nil && (tok != nil || state == stateExpired) && (cached == nil || now.Sub(cached.renewRequested) > time.Minute) {
			if rerr := c.requestRenewal(ctx, name); rerr != nil {
				lastErr = rerr.Error()
			} else {
				c.opts.Logger.Info().Str("request", c.namespace+"/"+name).Msg("asked Arc for a new extension identity token")
				if cached != nil {
					cached.renewRequested = now
				}
			}
		}
		if cached != nil && cached.expires.Sub(now) > identityMinValidity {
			cached.checkedAt = now
			return azcore.AccessToken{Token: cached.token, ExpiresOn: cached.expires}, nil
		}
		select {
		case <-ctx.Done():
			if last == "" {
				last = "no answer yet"
			}
			if lastErr != "" {
				last += "; last error: " + lastErr
			}
			return azcore.AccessToken{}, fmt.Errorf("%s ExtensionIdentity: no token from %s %s/%s for audience %s (%s); check that the cluster is connected to Azure Arc, that the extension has an identity, and the clusteridentityoperator logs in namespace %s: %w",
				KeyAuthType, IdentityRequestKind, c.namespace, name, aud, last, DefaultIdentityNamespace, ctx.Err())
		case <-time.After(c.pollInterval()):
		}
	}
}

const (
	stateExpired = "status.expirationTime has passed"
	statePending = "status not populated yet"
)

// check makes sure the request exists with the right spec and returns the
// token its status points at, if that token is still usable.
func (c *clusterIdentity) check(ctx context.Context, name, aud string) (*identityToken, string, error) {
	ri := c.dyn.Resource(IdentityRequestGVR).Namespace(c.namespace)
	obj, err := ri.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		req := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": IdentityRequestGVR.GroupVersion().String(),
			"kind":       IdentityRequestKind,
			"metadata": map[string]any{
				"name":      name,
				"namespace": c.namespace,
				"labels":    map[string]any{"app.kubernetes.io/managed-by": "apim-agent"},
			},
			"spec": map[string]any{"audience": aud, "resourceId": c.resourceID},
		}}
		if _, err := ri.Create(ctx, req, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, "", c.kubeError("create", name, err)
		}
		c.opts.Logger.Info().Str("request", c.namespace+"/"+name).Str("audience", aud).Msg("created " + IdentityRequestKind)
		return nil, statePending, nil
	case err != nil:
		return nil, "", c.kubeError("read", name, err)
	}
	gotAud, _, _ := unstructured.NestedString(obj.Object, "spec", "audience")
	gotRes, _, _ := unstructured.NestedString(obj.Object, "spec", "resourceId")
	if gotAud != aud || gotRes != c.resourceID {
		patch := fmt.Sprintf(`{"spec":{"audience":%q,"resourceId":%q}}`, aud, c.resourceID)
		if _, err := ri.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return nil, "", c.kubeError("update", name, err)
		}
		return nil, "spec updated, waiting for a new token", nil
	}
	secretName, _, _ := unstructured.NestedString(obj.Object, "status", "tokenReference", "secretName")
	dataName, _, _ := unstructured.NestedString(obj.Object, "status", "tokenReference", "dataName")
	expText, _, _ := unstructured.NestedString(obj.Object, "status", "expirationTime")
	if secretName == "" || dataName == "" || expText == "" {
		return nil, statePending, nil
	}
	exp, err := time.Parse(time.RFC3339, expText)
	if err != nil {
		return nil, "status.expirationTime is not RFC 3339", nil
	}
	if exp.Sub(c.opts.now()) <= identityMinValidity {
		return nil, stateExpired, nil
	}
	sec, err := c.core.CoreV1().Secrets(c.namespace).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("%s ExtensionIdentity: cannot read token Secret %s/%s named by %s %s: %w", KeyAuthType, c.namespace, secretName, IdentityRequestKind, name, err)
	}
	tok := strings.TrimSpace(string(sec.Data[dataName]))
	if tok == "" {
		return nil, fmt.Sprintf("token Secret %s/%s has no key %q yet", c.namespace, secretName, dataName), nil
	}
	return &identityToken{token: tok, expires: exp}, "", nil
}

// requestRenewal clears status.expirationTime, the signal Arc's identity
// operator acts on to issue a fresh token.
func (c *clusterIdentity) requestRenewal(ctx context.Context, name string) error {
	_, err := c.dyn.Resource(IdentityRequestGVR).Namespace(c.namespace).Patch(ctx, name, types.MergePatchType,
		[]byte(`{"status":{"expirationTime":""}}`), metav1.PatchOptions{}, "status")
	if err != nil {
		return c.kubeError("renew", name, err)
	}
	return nil
}

func (c *clusterIdentity) kubeError(verb, name string, err error) error {
	hint := ""
	switch {
	case apierrors.IsForbidden(err):
		hint = "; the agent's service account needs get, create and patch on azureclusteridentityrequests (and get on secrets) in namespace " + c.namespace
	case apierrors.IsNotFound(err):
		hint = "; is the cluster connected to Azure Arc (the CRD comes with the Arc agents)?"
	}
	return fmt.Errorf("%s ExtensionIdentity: cannot %s %s %s/%s: %w%s", KeyAuthType, verb, IdentityRequestKind, c.namespace, name, err, hint)
}

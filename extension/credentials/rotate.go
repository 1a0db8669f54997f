package credentials

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/apimanagement/armapimanagement/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

// MaxTokenValidity is the longest expiry ARM generateToken accepts.
const MaxTokenValidity = 30 * 24 * time.Hour

// serviceAccountNamespaceFile is where Kubernetes mounts the pod's namespace.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// PodNamespace returns the pod's namespace: $POD_NAMESPACE (Downward API) or
// the service account's namespace file; "" outside a pod.
func PodNamespace(getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if ns := getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile(serviceAccountNamespaceFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// RotatorConfig configures gateway token renewal.
type RotatorConfig struct {
	// ResourceID is the gateway's ARM id (gateway.resourceId).
	ResourceID string
	// SecretNamespace/SecretName/SecretKey locate the Kubernetes Secret the
	// token is mounted from; the renewed token is written back there so a
	// restarted pod keeps it. SecretName "" disables write-back; the
	// namespace defaults to PodNamespace, the key to gateway.auth.token.
	SecretNamespace string
	SecretName      string
	SecretKey       string
	// RenewBefore is how long before expiry renewal starts (default 7 days,
	// when the agent starts warning).
	RenewBefore time.Duration
	// Validity is the lifetime requested for a new token (default and
	// maximum 30 days).
	Validity time.Duration
	// KeyType is the gateway key that signs the token: primary (default) or secondary.
	KeyType string
	// RetryMin and RetryMax bound the jittered backoff after a failure
	// (default 10s and 10m).
	RetryMin, RetryMax time.Duration
	// Identity calls ARM; nil derives it from the provider's settings
	// (Config.RotationIdentity).
	Identity azcore.TokenCredential
}

// Rotator renews the provider's gateway token through ARM generateToken.
type Rotator struct {
	p        *Provider
	cfg      RotatorConfig
	opts     Options
	gateways *armapimanagement.GatewayClient
	core     kubernetes.Interface // nil without write-back
	rg       string
	service  string
	gateway  string

	pending string // a renewed token not yet written back
}

// NewRotator checks the configuration and builds the ARM and Kubernetes
// clients. It contacts neither.
func NewRotator(p *Provider, rc RotatorConfig, opts Options) (*Rotator, error) {
	cfg := p.Config()
	if cfg.AuthType != AuthGatewayToken {
		return nil, fmt.Errorf("%s: rotation renews a gateway token, but %s is %s", KeyRotationEnabled, KeyAuthType, cfg.AuthType)
	}
	id, err := arm.ParseResourceID(rc.ResourceID)
	if err != nil || !strings.EqualFold(id.ResourceType.String(), "Microsoft.ApiManagement/service/gateways") || id.Parent == nil {
		return nil, fmt.Errorf("%s: expected /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ApiManagement/service/<service>/gateways/<gateway>", KeyResourceID)
	}
	r := &Rotator{p: p, cfg: rc, opts: opts, rg: id.ResourceGroupName, service: id.Parent.Name, gateway: id.Name}
	if tok, _ := p.GatewayToken(); !strings.EqualFold(tok.Gateway(), r.gateway) {
		return nil, fmt.Errorf("%s: names gateway %q but %s was issued for gateway %q", KeyResourceID, r.gateway, KeyToken, tok.Gateway())
	}
	if r.cfg.RenewBefore <= 0 {
		r.cfg.RenewBefore = ExpiringWithin
	}
	if r.cfg.Validity <= 0 || r.cfg.Validity > MaxTokenValidity {
		r.cfg.Validity = MaxTokenValidity
	}
	if r.cfg.KeyType == "" {
		r.cfg.KeyType = string(armapimanagement.KeyTypePrimary)
	}
	if r.cfg.KeyType != string(armapimanagement.KeyTypePrimary) && r.cfg.KeyType != string(armapimanagement.KeyTypeSecondary) {
		return nil, fmt.Errorf("rotation key type must be primary or secondary, not %q", r.cfg.KeyType)
	}
	if r.cfg.RetryMin <= 0 {
		r.cfg.RetryMin = 10 * time.Second
	}
	if r.cfg.RetryMax < r.cfg.RetryMin {
		r.cfg.RetryMax = max(10*time.Minute, r.cfg.RetryMin)
	}
	if r.cfg.SecretKey == "" {
		r.cfg.SecretKey = KeyToken
	}
	identity := rc.Identity
	if identity == nil {
		idCfg, err := cfg.RotationIdentity(opts.getenv())
		if err != nil {
			return nil, err
		}
		if err := idCfg.validate(); err != nil {
			return nil, fmt.Errorf("%s: the identity that calls ARM: %w", KeyRotationEnabled, err)
		}
		switch idCfg.AuthType {
		case AuthExtensionIdentity:
			identity, err = newClusterIdentity(idCfg, opts)
		default:
			identity, err = newEntraCredential(idCfg, opts)
		}
		if err != nil {
			return nil, err
		}
	}
	cc, err := cfg.cloudConfig(opts.getenv())
	if err != nil {
		return nil, err
	}
	r.gateways, err = armapimanagement.NewGatewayClient(id.SubscriptionID, identity, &arm.ClientOptions{ClientOptions: opts.clientOptions(cc)})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyResourceID, err)
	}
	if rc.SecretName != "" {
		if r.cfg.SecretNamespace == "" {
			r.cfg.SecretNamespace = PodNamespace(opts.getenv())
		}
		if r.cfg.SecretNamespace == "" {
			return nil, fmt.Errorf("token write-back to Secret %s: the pod's namespace is unknown (set POD_NAMESPACE)", rc.SecretName)
		}
		kc, err := opts.kubeConfig()
		if err != nil {
			return nil, fmt.Errorf("token write-back to Secret %s/%s: %w", r.cfg.SecretNamespace, rc.SecretName, err)
		}
		if r.core, err = kubernetes.NewForConfig(kc); err != nil {
			return nil, fmt.Errorf("token write-back to Secret %s/%s: %w", r.cfg.SecretNamespace, rc.SecretName, err)
		}
	}
	return r, nil
}

// Run renews the token whenever less than RenewBefore remains, until ctx is
// done. Failures are logged (never with a token) and retried with a capped,
// jittered backoff. It returns nil when ctx ends.
func (r *Rotator) Run(ctx context.Context) error {
	log := r.opts.Logger
	failures := 0
	for {
		var wait time.Duration
		err := r.step(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			wait = r.backoff(failures)
			failures++
			log.Error().Err(err).Str("gateway", r.gateway).Dur("retryIn", wait).Msg("gateway token renewal failed")
		default:
			failures = 0
			wait = r.untilDue()
		}
		changed := r.p.Changed()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changed:
			t.Stop()
		case <-t.C:
		}
	}
}

// untilDue is how long until the current token enters its renewal window.
func (r *Rotator) untilDue() time.Duration {
	tok, ok := r.p.GatewayToken()
	if !ok {
		return 24 * time.Hour // the credential is no longer a gateway token; Changed wakes us
	}
	return max(tok.Expiry().Add(-r.cfg.RenewBefore).Sub(r.opts.now()), 0)
}

// step writes back a pending token, or renews the token if it is due.
func (r *Rotator) step(ctx context.Context) error {
	if r.pending != "" {
		return r.writeBack(ctx)
	}
	if r.untilDue() > 0 {
		return nil
	}
	if _, ok := r.p.GatewayToken(); !ok {
		return nil
	}
	return r.RotateOnce(ctx)
}

// RotateOnce asks ARM for a new token, switches the provider to it, and
// writes it back to the Secret.
func (r *Rotator) RotateOnce(ctx context.Context) error {
	expiry := r.opts.now().UTC().Add(r.cfg.Validity).Truncate(time.Minute)
	kt := armapimanagement.KeyType(r.cfg.KeyType)
	resp, err := r.gateways.GenerateToken(ctx, r.rg, r.service, r.gateway,
		armapimanagement.GatewayTokenRequestContract{Expiry: &expiry, KeyType: &kt}, nil)
	if err != nil {
		return fmt.Errorf("ARM generateToken for gateway %s of service %s: %w", r.gateway, r.service, err)
	}
	if resp.Value == nil {
		return fmt.Errorf("ARM generateToken for gateway %s: the response has no value", r.gateway)
	}
	tok, err := ParseGatewayToken(*resp.Value)
	if err != nil {
		return fmt.Errorf("ARM generateToken for gateway %s returned an unusable token: %w", r.gateway, err)
	}
	if !strings.EqualFold(tok.Gateway(), r.gateway) {
		return fmt.Errorf("ARM generateToken returned a token for gateway %q, expected %q", tok.Gateway(), r.gateway)
	}
	cfg := r.p.Config()
	cfg.Token = settings.NewSecret(tok.Header())
	if err := r.p.renew(cfg); err != nil {
		return fmt.Errorf("using the renewed gateway token: %w", err)
	}
	r.opts.Logger.Info().Str("gateway", tok.Gateway()).Time("expiresAt", tok.Expiry()).Msg("gateway token renewed through ARM")
	if r.core == nil {
		r.opts.Logger.Warn().Str("gateway", tok.Gateway()).Msg("no Secret configured for the token: a restarted pod will start with the old token")
		return nil
	}
	r.pending = tok.Header()
	return r.writeBack(ctx)
}

// writeBack stores the pending token in the Secret it was mounted from.
func (r *Rotator) writeBack(ctx context.Context) error {
	secrets := r.core.CoreV1().Secrets(r.cfg.SecretNamespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := secrets.Get(ctx, r.cfg.SecretName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[r.cfg.SecretKey] = []byte(r.pending)
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: "apim-agent"})
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the renewed gateway token to Secret %s/%s key %s (the agent keeps using it): %w", r.cfg.SecretNamespace, r.cfg.SecretName, r.cfg.SecretKey, err)
	}
	r.pending = ""
	r.opts.Logger.Info().Str("secret", r.cfg.SecretNamespace+"/"+r.cfg.SecretName).Str("key", r.cfg.SecretKey).Msg("renewed gateway token saved")
	return nil
}

// backoff is RetryMin doubled per failure, capped at RetryMax, with jitter
// in [d/2, d] so replicas do not retry in step.
func (r *Rotator) backoff(failures int) time.Duration {
	d := r.cfg.RetryMin
	for range failures {
		d *= 2
		if d >= r.cfg.RetryMax {
			d = r.cfg.RetryMax
			break
		}
	}
	return d/2 + rand.N(d/2+1)
}

package credentials

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"software.sslmate.com/src/go-pkcs12"
)

// ErrEntraRejected is wrapped by an *EntraError: Entra refused the
// credential (wrong secret, unknown app, expired certificate, ...), so
// retrying with the same settings cannot succeed.
var ErrEntraRejected = errors.New("entra rejected the credential")

// EntraError reports a token request Entra answered with an OAuth error. It
// names the setting to fix and carries Entra's code and description, never a
// secret.
type EntraError struct {
	Setting     string // the key (or environment variable) to fix
	Identity    string // "app <client id> in tenant <tenant>"
	StatusCode  int
	Code        string // OAuth error, e.g. invalid_client
	Description string // first line of error_description, e.g. "AADSTS7000215: Invalid client secret provided..."
}

func (e *EntraError) Error() string {
	msg := fmt.Sprintf("%s: Entra refused the token request for %s (HTTP %d", e.Setting, e.Identity, e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	msg += ")"
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrEntraRejected) true.
func (e *EntraError) Unwrap() error { return ErrEntraRejected }

// entraCredential is an azidentity credential plus what is needed to turn
// its failures into errors a user can act on.
type entraCredential struct {
	tc       azcore.TokenCredential
	setting  string   // blamed when Entra refuses
	identity string   // for messages
	secrets  []string // scrubbed from any error text

	clientSetting, tenantSetting string // blamed for an unknown app or tenant
}

// newEntraCredential builds the azidentity credential for an AzureAdApp or
// WorkloadIdentity config.
func newEntraCredential(cfg Config, opts Options) (*entraCredential, error) {
	cc, err := cfg.cloudConfig(opts.getenv())
	if err != nil {
		return nil, err
	}
	co := opts.clientOptions(cc)
	switch cfg.AuthType {
	case AuthAzureAdApp:
		id := "app " + cfg.ClientID + " in tenant " + cfg.TenantID
		if !cfg.ClientSecret.IsZero() {
			tc, err := azidentity.NewClientSecretCredential(cfg.TenantID, cfg.ClientID, cfg.ClientSecret.Reveal(),
				&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: opts.DisableInstanceDiscovery})
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", KeyTenantID, KeyClientID, err)
			}
			return &entraCredential{tc: tc, setting: KeyClientSecret, identity: id, secrets: []string{cfg.ClientSecret.Reveal()}, clientSetting: KeyClientID, tenantSetting: KeyTenantID}, nil
		}
		certs, key, err := parseCertificate(cfg.Certificate.Reveal(), cfg.CertificatePassword.Reveal())
		if err != nil {
			return nil, err
		}
		tc, err := azidentity.NewClientCertificateCredential(cfg.TenantID, cfg.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: opts.DisableInstanceDiscovery})
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", KeyTenantID, KeyClientID, err)
		}
		return &entraCredential{tc: tc, setting: KeyCertificate, identity: id, secrets: []string{cfg.Certificate.Reveal(), cfg.CertificatePassword.Reveal()}, clientSetting: KeyClientID, tenantSetting: KeyTenantID}, nil
	case AuthWorkloadIdentity:
		env := opts.getenv()
		clientID, tenantID, file := cfg.ClientID, cfg.TenantID, cfg.FederatedTokenFile
		if clientID == "" {
			clientID = env(EnvClientID)
		}
		if tenantID == "" {
			tenantID = env(EnvTenantID)
		}
		if file == "" {
			file = env(EnvFederatedTokenFile)
		}
		var missing []string
		if clientID == "" {
			missing = append(missing, EnvClientID+" (or "+KeyClientID+")")
		}
		if tenantID == "" {
			missing = append(missing, EnvTenantID+" (or "+KeyTenantID+")")
		}
		if file == "" {
			missing = append(missing, EnvFederatedTokenFile)
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s WorkloadIdentity: %s not set; the workload identity webhook injects them when the pod has the label azure.workload.identity/use=true and its service account the annotation azure.workload.identity/client-id", KeyAuthType, strings.Join(missing, ", "))
		}
		tc, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, ClientID: clientID, TenantID: tenantID, TokenFilePath: file,
			DisableInstanceDiscovery: opts.DisableInstanceDiscovery,
		})
		if err != nil {
			return nil, fmt.Errorf("%s WorkloadIdentity: %w", KeyAuthType, err)
		}
		clientSetting, tenantSetting := EnvClientID, EnvTenantID
		if cfg.ClientID != "" {
			clientSetting = KeyClientID
		}
		if cfg.TenantID != "" {
			tenantSetting = KeyTenantID
		}
		return &entraCredential{tc: tc, setting: EnvFederatedTokenFile + " (federated credential of " + clientID + ")", identity: "workload identity " + clientID + " in tenant " + tenantID,
			clientSetting: clientSetting, tenantSetting: tenantSetting}, nil
	}
	return nil, fmt.Errorf("%s: %q is not an Entra credential type", KeyAuthType, string(cfg.AuthType))
}

// GetToken implements azcore.TokenCredential with errors that name the
// setting to fix.
func (e *entraCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := e.tc.GetToken(ctx, o)
	if err != nil {
		return azcore.AccessToken{}, e.explain(err)
	}
	return tok, nil
}

// explain turns an azidentity error into an *EntraError when Entra answered,
// or wraps it (scrubbed of secrets) when it did not.
func (e *entraCredential) explain(err error) error {
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) && afe.RawResponse != nil {
		ee := &EntraError{Setting: e.setting, Identity: e.identity, StatusCode: afe.RawResponse.StatusCode}
		if body, rerr := runtime.Payload(afe.RawResponse); rerr == nil {
			var oe struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(body, &oe) == nil {
				ee.Code = oe.Error
				ee.Description, _, _ = strings.Cut(strings.TrimSpace(oe.Description), "\n")
				ee.Description = strings.TrimSpace(strings.TrimSuffix(ee.Description, "\r"))
			}
		}
		ee.Code = e.scrub(ee.Code)
		ee.Description = e.scrub(ee.Description)
		// Entra says which part is wrong; blame that setting.
		switch {
		case strings.HasPrefix(ee.Description, "AADSTS700016:"): // application not found in the directory
			ee.Setting = e.clientSetting
		case strings.HasPrefix(ee.Description, "AADSTS90002:"), strings.HasPrefix(ee.Description, "AADSTS900023:"): // tenant not found / invalid
			ee.Setting = e.tenantSetting
		}
		return ee
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &scrubbedError{msg: fmt.Sprintf("%s: token request for %s failed: %s", e.setting, e.identity, e.scrub(err.Error())), err: err}
}

func (e *entraCredential) scrub(s string) string {
	for _, sec := range e.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}

// scrubbedError has a message free of secrets and still unwraps to the
// original error, so errors.Is works for network and context errors.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// parseCertificate reads a client certificate setting: PEM (certificate
// blocks and an unencrypted private key) or base64 PKCS#12, legacy or modern
// (AES, SHA-256 MAC, which azidentity.ParseCertificates cannot read).
func parseCertificate(data, password string) ([]*x509.Certificate, crypto.PrivateKey, error) {
	trimmed := strings.TrimSpace(data)
	var (
		certs []*x509.Certificate
		key   crypto.PrivateKey
	)
	if strings.HasPrefix(trimmed, "-----BEGIN") {
		if strings.Contains(trimmed, "ENCRYPTED") {
			return nil, nil, fmt.Errorf("%s: the PEM private key is encrypted; pass an unencrypted PEM key or a PKCS#12 file with %s", KeyCertificate, KeyCertificatePassword)
		}
		var err error
		certs, key, err = azidentity.ParseCertificates([]byte(trimmed), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: not a usable PEM certificate and private key: %v", KeyCertificate, err)
		}
	} else {
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(trimmed), ""))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: neither PEM (-----BEGIN CERTIFICATE-----) nor base64 PKCS#12", KeyCertificate)
		}
		k, leaf, chain, err := pkcs12.DecodeChain(der, password)
		switch {
		case errors.Is(err, pkcs12.ErrIncorrectPassword):
			return nil, nil, fmt.Errorf("%s: wrong password for the PKCS#12 certificate in %s", KeyCertificatePassword, KeyCertificate)
		case err != nil:
			return nil, nil, fmt.Errorf("%s: not a usable PKCS#12 certificate: %v", KeyCertificate, err)
		}
		certs, key = append([]*x509.Certificate{leaf}, chain...), k
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s: unsupported private key type %T", KeyCertificate, key)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := signer.Public().(equaler); !ok || !pub.Equal(certs[0].PublicKey) {
		return nil, nil, fmt.Errorf("%s: the private key does not belong to the first certificate (%s)", KeyCertificate, certs[0].Subject)
	}
	return certs, key, nil
}

// clientOptions are the azcore options of every Azure client the package
// builds: the cloud, and the tests' transport and retry hooks.
func (o Options) clientOptions(cc cloud.Configuration) azcore.ClientOptions {
	co := azcore.ClientOptions{Cloud: cc, Transport: o.Transport}
	if o.Retry != nil {
		co.Retry = *o.Retry
	}
	return co
}

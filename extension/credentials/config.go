package credentials

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
)

// AuthType selects how the agent authenticates to the configuration endpoint
// (setting gateway.auth.type).
type AuthType string

// Authentication types, spelled as in the settings schema.
const (
	AuthGatewayToken      AuthType = "GatewayToken"
	AuthAzureAdApp        AuthType = "AzureAdApp"
	AuthWorkloadIdentity  AuthType = "WorkloadIdentity"
	AuthExtensionIdentity AuthType = "ExtensionIdentity"
)

// IsEntra reports whether the type authenticates with an Entra (Bearer) token.
func (t AuthType) IsEntra() bool {
	return t == AuthAzureAdApp || t == AuthWorkloadIdentity || t == AuthExtensionIdentity
}

// DefaultTokenAudience is the audience of the Entra token the configuration
// endpoint accepts (default of gateway.auth.tokenAudience).
const DefaultTokenAudience = "https://azure-api.net/configuration"

// DefaultIdentityNamespace is where Arc's identity operator watches
// AzureClusterIdentityRequests and writes their token Secrets.
const DefaultIdentityNamespace = "azure-arc"

// Setting keys this package reads; errors name them so a user knows which
// value to fix.
const (
	KeyAuthType            = "gateway.auth.type"
	KeyToken               = "gateway.auth.token"
	KeyTokenAudience       = "gateway.auth.tokenAudience"
	KeyTenantID            = "gateway.auth.azureAd.tenant.id"
	KeyAuthority           = "gateway.auth.azureAd.authority"
	KeyClientID            = "gateway.auth.azureAd.app.id"
	KeyClientSecret        = "gateway.auth.azureAd.app.secret"
	KeyCertificate         = "gateway.auth.azureAd.app.certificate"
	KeyCertificatePassword = "gateway.auth.azureAd.app.certificatePassword"
	KeyRotationEnabled     = "gateway.auth.rotation.enabled"
	KeyResourceID          = "gateway.resourceId"
	KeyExtensionName       = "Azure.Extension.Name"
	KeyClusterCloud        = "Azure.Cluster.Cloud"
)

// Environment variables the workload identity webhook injects into the pod.
const (
	EnvClientID           = "AZURE_CLIENT_ID"
	EnvTenantID           = "AZURE_TENANT_ID"
	EnvFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
	EnvAuthorityHost      = "AZURE_AUTHORITY_HOST"
)

// Config describes one credential. Secret values are settings.Secret, so
// printing or marshalling a Config never shows them.
type Config struct {
	AuthType AuthType

	// GatewayToken.
	Token settings.Secret

	// Entra (AzureAdApp; WorkloadIdentity overrides of the webhook's env).
	TenantID            string
	ClientID            string
	ClientSecret        settings.Secret
	Certificate         settings.Secret // PEM (certificate + unencrypted key) or base64 PKCS#12
	CertificatePassword settings.Secret
	// Authority is the Entra authority host (https://login.microsoftonline.us)
	// or a cloud name (AzurePublicCloud, AzureChinaCloud, AzureUSGovernment,
	// as Arc passes in Azure.Cluster.Cloud). Empty: AZURE_AUTHORITY_HOST for
	// workload identity, else the cloud, else public Azure.
	Authority string
	// Cloud is the cluster's cloud (Azure.Cluster.Cloud); it picks the
	// authority and ARM endpoints when Authority does not.
	Cloud string
	// TokenAudience is the audience of the configuration endpoint's token;
	// the scope requested is TokenAudience + "/.default".
	TokenAudience string
	// FederatedTokenFile is the service account token file of workload
	// identity; empty uses AZURE_FEDERATED_TOKEN_FILE.
	FederatedTokenFile string

	// ExtensionIdentity: the AzureClusterIdentityRequest's resourceId is the
	// extension's name; the request lives in IdentityNamespace (default
	// azure-arc) under IdentityRequestName (default derived from ExtensionName).
	ExtensionName       string
	IdentityNamespace   string
	IdentityRequestName string

	// ResourceManagerEndpoint and ResourceManagerAudience override the ARM
	// endpoint of the cloud (private clouds, tests).
	ResourceManagerEndpoint string
	ResourceManagerAudience string
}

// Scope returns the Entra scope requested for the configuration endpoint.
func (c Config) Scope() string { return audienceOrDefault(c.TokenAudience) + "/.default" }

func audienceOrDefault(a string) string {
	if a == "" {
		return DefaultTokenAudience
	}
	return a
}

// ConfigFromSettings reads the credential settings from the merged settings
// (defaults applied). Workload identity's client, tenant and token file come
// from the pod's environment unless the azureAd settings override them.
func ConfigFromSettings(s *settings.Settings) Config {
	t := AuthType(s.String(KeyAuthType))
	if t == "" {
		t = AuthGatewayToken
	}
	return Config{
		AuthType:            t,
		Token:               s.Secret(KeyToken),
		TenantID:            s.String(KeyTenantID),
		ClientID:            s.String(KeyClientID),
		ClientSecret:        s.Secret(KeyClientSecret),
		Certificate:         s.Secret(KeyCertificate),
		CertificatePassword: s.Secret(KeyCertificatePassword),
		Authority:           s.String(KeyAuthority),
		Cloud:               s.String(KeyClusterCloud),
		TokenAudience:       s.String(KeyTokenAudience),
		ExtensionName:       s.String(KeyExtensionName),
	}
}

// RotationIdentity returns the Entra identity that calls ARM generateToken
// when the configuration endpoint itself is reached with a gateway token: an
// Entra app when a secret or certificate is set, workload identity when the
// webhook injected a federated token file, otherwise the extension's own
// identity when Arc named the extension.
func (c Config) RotationIdentity(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = noEnv
	}
	id := c
	id.Token = settings.Secret{}
	switch {
	case c.AuthType.IsEntra():
		return id, nil
	case !c.ClientSecret.IsZero() || !c.Certificate.IsZero():
		id.AuthType = AuthAzureAdApp
	case c.FederatedTokenFile != "" || getenv(EnvFederatedTokenFile) != "":
		id.AuthType = AuthWorkloadIdentity
	case c.ExtensionName != "":
		id.AuthType = AuthExtensionIdentity
	default:
		return Config{}, fmt.Errorf("%s: token rotation needs an Entra identity allowed to call ARM: set %s and %s or %s, run with workload identity, or install as an Arc extension with an identity", KeyRotationEnabled, KeyClientID, KeyClientSecret, KeyCertificate)
	}
	return id, nil
}

func noEnv(string) string { return "" }

// cloudConfig resolves the Entra authority and ARM endpoint of c.
func (c Config) cloudConfig(getenv func(string) string) (cloud.Configuration, error) {
	// Precedence: the authority setting, then AZURE_AUTHORITY_HOST (the
	// workload identity webhook sets it), then the cluster's cloud.
	base, known := cloudByName(c.Cloud)
	authority, source := "", KeyAuthority
	switch a := strings.TrimSpace(c.Authority); {
	case a == "":
		if getenv != nil {
			authority, source = getenv(EnvAuthorityHost), EnvAuthorityHost
		}
		if !known {
			if authority == "" {
				return cloud.Configuration{}, fmt.Errorf("%s: unknown cloud %q (expected AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud); set %s for another cloud", KeyClusterCloud, c.Cloud, KeyAuthority)
			}
			base, _ = cloudByName("")
		}
	case strings.Contains(a, "://"):
		authority = a
		if !known {
			base, _ = cloudByName("") // ARM: public unless ResourceManagerEndpoint says otherwise
		}
	default:
		named, ok := cloudByName(a)
		if !ok {
			return cloud.Configuration{}, fmt.Errorf("%s: %q is neither an https URL nor a cloud name (AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud)", KeyAuthority, a)
		}
		base = named
	}
	cfg := cloud.Configuration{ActiveDirectoryAuthorityHost: base.authority, Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
		cloud.ResourceManager: {Endpoint: base.arm, Audience: base.armAudience},
	}}
	if authority != "" {
		u, err := url.Parse(authority)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return cloud.Configuration{}, fmt.Errorf("%s: authority must be an https URL such as https://login.microsoftonline.us", source)
		}
		cfg.ActiveDirectoryAuthorityHost = strings.TrimRight(authority, "/") + "/"
	}
	rm := cfg.Services[cloud.ResourceManager]
	if c.ResourceManagerEndpoint != "" {
		rm.Endpoint = c.ResourceManagerEndpoint
	}
	if c.ResourceManagerAudience != "" {
		rm.Audience = c.ResourceManagerAudience
	}
	cfg.Services[cloud.ResourceManager] = rm
	return cfg, nil
}

type namedCloud struct{ authority, arm, armAudience string }

// cloudByName maps the cloud names Arc and the Azure CLI use to endpoints.
func cloudByName(name string) (namedCloud, bool) {
	switch strings.ToLower(strings.ReplaceAll(name, " ", "")) {
	case "", "azurepubliccloud", "azurecloud", "public":
		return namedCloud{"https://login.microsoftonline.com/", "https://management.azure.com", "https://management.azure.com"}, true
	case "azurechinacloud", "china":
		return namedCloud{"https://login.chinacloudapi.cn/", "https://management.chinacloudapi.cn", "https://management.core.chinacloudapi.cn/"}, true
	case "azureusgovernmentcloud", "azureusgovernment", "usgovernment":
		return namedCloud{"https://login.microsoftonline.us/", "https://management.usgovcloudapi.net", "https://management.core.usgovcloudapi.net/"}, true
	}
	return namedCloud{}, false
}

// validate checks the settings a credential type needs, naming the key.
func (c Config) validate() error {
	switch c.AuthType {
	case AuthGatewayToken:
		if c.Token.IsZero() {
			return fmt.Errorf("%s: a gateway token is required with %s %s", KeyToken, KeyAuthType, AuthGatewayToken)
		}
	case AuthAzureAdApp:
		var errs []error
		if c.TenantID == "" {
			errs = append(errs, fmt.Errorf("%s: required with %s %s", KeyTenantID, KeyAuthType, c.AuthType))
		}
		if c.ClientID == "" {
			errs = append(errs, fmt.Errorf("%s: required with %s %s", KeyClientID, KeyAuthType, c.AuthType))
		}
		if c.ClientSecret.IsZero() && c.Certificate.IsZero() {
			errs = append(errs, fmt.Errorf("%s or %s: one is required with %s %s", KeyClientSecret, KeyCertificate, KeyAuthType, c.AuthType))
		}
		if !c.ClientSecret.IsZero() && !c.Certificate.IsZero() {
			errs = append(errs, fmt.Errorf("%s and %s: set only one", KeyClientSecret, KeyCertificate))
		}
		return errors.Join(errs...)
	case AuthWorkloadIdentity:
	case AuthExtensionIdentity:
		if c.ExtensionName == "" {
			return fmt.Errorf("%s: ExtensionIdentity needs the extension's name, which Azure Arc passes as %s", KeyAuthType, KeyExtensionName)
		}
	case "":
		return fmt.Errorf("%s: not set", KeyAuthType)
	default:
		return fmt.Errorf("%s: unknown type %q (expected GatewayToken, AzureAdApp, WorkloadIdentity or ExtensionIdentity)", KeyAuthType, string(c.AuthType))
	}
	return nil
}

// Package config defines the gateway configuration snapshot, loads it from
// JSON or YAML, and validates it. The snapshot keeps the shape and property
// names of API Management's ARM resources ({"name": ..., "properties": {...}})
// so that exports and APIOps folders convert mechanically.
//
// The JSON schema in schemas/gateway-configuration.schema.json describes the
// same document; a test keeps the two in agreement.
package config

import "encoding/json"

// SchemaVersion is the snapshot format version this gateway reads.
const SchemaVersion = "1.0"

// Snapshot is everything the gateway serves, as one document.
type Snapshot struct {
	SchemaVersion   string           `json:"schemaVersion"`
	Revision        string           `json:"revision,omitempty"`
	Gateway         Gateway          `json:"gateway,omitempty"`
	Policy          string           `json:"policy,omitempty"`
	PolicyFragments []PolicyFragment `json:"policyFragments,omitempty"`
	APIs            []API            `json:"apis,omitempty"`
	APIVersionSets  []APIVersionSet  `json:"apiVersionSets,omitempty"`
	Products        []Product        `json:"products,omitempty"`
	Subscriptions   []Subscription   `json:"subscriptions,omitempty"`
	NamedValues     []NamedValue     `json:"namedValues,omitempty"`
	Backends        []Backend        `json:"backends,omitempty"`
	Certificates    []Certificate    `json:"certificates,omitempty"`
}

// Gateway describes the gateway resource this snapshot belongs to.
type Gateway struct {
	Name      string     `json:"name,omitempty"`
	Hostnames []Hostname `json:"hostnames,omitempty"`
	// RejectUnknownHostnames answers 404 to a request whose Host matches
	// none of Hostnames. Off by default: inside a cluster callers often use
	// a Service IP or name that is not a public hostname.
	RejectUnknownHostnames bool `json:"rejectUnknownHostnames,omitempty"`
}

// Hostname is one gateway hostname configuration. Hostname may start with
// "*." to match one label of any subdomain.
type Hostname struct {
	Hostname string `json:"hostname"`
	// CertificateID names an entry of Snapshot.Certificates served for this
	// hostname on the HTTPS listener (SNI).
	CertificateID string `json:"certificateId,omitempty"`
	// DefaultSSLBinding marks the certificate served when the client sends
	// no SNI name or one that matches no hostname.
	DefaultSSLBinding bool `json:"defaultSslBinding,omitempty"`
}

// PolicyFragment is a reusable piece of policy XML.
type PolicyFragment struct {
	Name       string                   `json:"name"`
	Properties PolicyFragmentProperties `json:"properties"`
}

// PolicyFragmentProperties mirrors the ARM policyFragments resource.
type PolicyFragmentProperties struct {
	Description string `json:"description,omitempty"`
	Format      string `json:"format,omitempty"`
	Value       string `json:"value"`
}

// API is one API (one version, one revision) with its operations.
type API struct {
	Name       string        `json:"name"`
	Properties APIProperties `json:"properties"`
	Policy     string        `json:"policy,omitempty"`
	Operations []Operation   `json:"operations,omitempty"`
}

// APIProperties mirrors the ARM apis resource properties the gateway uses.
type APIProperties struct {
	DisplayName                   string                         `json:"displayName,omitempty"`
	Description                   string                         `json:"description,omitempty"`
	Path                          string                         `json:"path"`
	ServiceURL                    string                         `json:"serviceUrl,omitempty"`
	Protocols                     []string                       `json:"protocols,omitempty"`
	SubscriptionRequired          *bool                          `json:"subscriptionRequired,omitempty"`
	SubscriptionKeyParameterNames *SubscriptionKeyParameterNames `json:"subscriptionKeyParameterNames,omitempty"`
	APIVersion                    string                         `json:"apiVersion,omitempty"`
	APIVersionSetID               string                         `json:"apiVersionSetId,omitempty"`
	APIRevision                   string                         `json:"apiRevision,omitempty"`
	IsCurrent                     *bool                          `json:"isCurrent,omitempty"`
	Type                          string                         `json:"type,omitempty"`
}

// SubscriptionKeyParameterNames renames the subscription key header and
// query parameter for one API.
type SubscriptionKeyParameterNames struct {
	Header string `json:"header,omitempty"`
	Query  string `json:"query,omitempty"`
}

// Operation is one operation of an API.
type Operation struct {
	Name       string              `json:"name"`
	Properties OperationProperties `json:"properties"`
	Policy     string              `json:"policy,omitempty"`
}

// OperationProperties mirrors the ARM operations resource properties.
type OperationProperties struct {
	DisplayName        string      `json:"displayName,omitempty"`
	Description        string      `json:"description,omitempty"`
	Method             string      `json:"method"`
	URLTemplate        string      `json:"urlTemplate"`
	TemplateParameters []Parameter `json:"templateParameters,omitempty"`
	Request            *Request    `json:"request,omitempty"`
	Responses          []Response  `json:"responses,omitempty"`
}

// Parameter describes a template, query or header parameter.
type Parameter struct {
	Name         string   `json:"name"`
	Type         string   `json:"type,omitempty"`
	Required     bool     `json:"required,omitempty"`
	Values       []string `json:"values,omitempty"`
	DefaultValue string   `json:"defaultValue,omitempty"`
	Description  string   `json:"description,omitempty"`
}

// Request describes an operation's request.
type Request struct {
	Description     string           `json:"description,omitempty"`
	QueryParameters []Parameter      `json:"queryParameters,omitempty"`
	Headers         []Parameter      `json:"headers,omitempty"`
	Representations []Representation `json:"representations,omitempty"`
}

// Response describes one documented response of an operation; its examples
// feed the mock-response policy.
type Response struct {
	StatusCode      int              `json:"statusCode"`
	Description     string           `json:"description,omitempty"`
	Headers         []Parameter      `json:"headers,omitempty"`
	Representations []Representation `json:"representations,omitempty"`
}

// Representation is one content type of a request or response.
type Representation struct {
	ContentType string             `json:"contentType"`
	SchemaID    string             `json:"schemaId,omitempty"`
	TypeName    string             `json:"typeName,omitempty"`
	Examples    map[string]Example `json:"examples,omitempty"`
}

// Example is a named example value.
type Example struct {
	Summary       string          `json:"summary,omitempty"`
	Description   string          `json:"description,omitempty"`
	Value         json.RawMessage `json:"value,omitempty"`
	ExternalValue string          `json:"externalValue,omitempty"`
}

// APIVersionSet groups the versions of one API.
type APIVersionSet struct {
	Name       string                  `json:"name"`
	Properties APIVersionSetProperties `json:"properties"`
}

// Versioning schemes of an API version set.
const (
	VersioningSegment = "Segment"
	VersioningQuery   = "Query"
	VersioningHeader  = "Header"
)

// APIVersionSetProperties mirrors the ARM apiVersionSets resource.
type APIVersionSetProperties struct {
	DisplayName       string `json:"displayName,omitempty"`
	Description       string `json:"description,omitempty"`
	VersioningScheme  string `json:"versioningScheme"`
	VersionQueryName  string `json:"versionQueryName,omitempty"`
	VersionHeaderName string `json:"versionHeaderName,omitempty"`
}

// Product groups APIs for subscriptions.
type Product struct {
	Name       string            `json:"name"`
	Properties ProductProperties `json:"properties,omitempty"`
	// APIs lists the product's APIs by name or ARM id.
	APIs   []string `json:"apis,omitempty"`
	Policy string   `json:"policy,omitempty"`
}

// ProductProperties mirrors the ARM products resource.
type ProductProperties struct {
	DisplayName          string `json:"displayName,omitempty"`
	Description          string `json:"description,omitempty"`
	SubscriptionRequired *bool  `json:"subscriptionRequired,omitempty"`
	ApprovalRequired     bool   `json:"approvalRequired,omitempty"`
	SubscriptionsLimit   *int   `json:"subscriptionsLimit,omitempty"`
	State                string `json:"state,omitempty"`
	Terms                string `json:"terms,omitempty"`
}

// Subscription states.
const (
	SubscriptionActive = "active"
)

// Subscription grants access with a primary and a secondary key.
type Subscription struct {
	Name       string                 `json:"name"`
	Properties SubscriptionProperties `json:"properties"`
}

// SubscriptionProperties mirrors the ARM subscriptions resource.
type SubscriptionProperties struct {
	DisplayName    string `json:"displayName,omitempty"`
	Scope          string `json:"scope"`
	OwnerID        string `json:"ownerId,omitempty"`
	PrimaryKey     Secret `json:"primaryKey"`
	SecondaryKey   Secret `json:"secondaryKey,omitempty"`
	State          string `json:"state,omitempty"`
	AllowTracing   bool   `json:"allowTracing,omitempty"`
	ExpirationDate string `json:"expirationDate,omitempty"`
}

// NamedValue is a value policies reference as {{displayName}}.
type NamedValue struct {
	Name       string               `json:"name"`
	Properties NamedValueProperties `json:"properties"`
}

// NamedValueProperties mirrors the ARM namedValues resource.
type NamedValueProperties struct {
	DisplayName string   `json:"displayName"`
	Value       Secret   `json:"value"`
	Secret      bool     `json:"secret,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// Backend types.
const (
	BackendSingle = "Single"
	BackendPool   = "Pool"
)

// Backend is a named backend service or a pool of them.
type Backend struct {
	Name       string            `json:"name"`
	Properties BackendProperties `json:"properties"`
}

// BackendProperties mirrors the ARM backends resource.
type BackendProperties struct {
	Title          string              `json:"title,omitempty"`
	Description    string              `json:"description,omitempty"`
	URL            string              `json:"url,omitempty"`
	Protocol       string              `json:"protocol,omitempty"`
	Type           string              `json:"type,omitempty"`
	Credentials    *BackendCredentials `json:"credentials,omitempty"`
	TLS            *BackendTLS         `json:"tls,omitempty"`
	Proxy          *BackendProxy       `json:"proxy,omitempty"`
	CircuitBreaker *CircuitBreaker     `json:"circuitBreaker,omitempty"`
	Pool           *BackendPoolConfig  `json:"pool,omitempty"`
}

// BackendCredentials are added to every request sent to the backend.
type BackendCredentials struct {
	Header         map[string][]Secret   `json:"header,omitempty"`
	Query          map[string][]Secret   `json:"query,omitempty"`
	Authorization  *BackendAuthorization `json:"authorization,omitempty"`
	Certificate    []string              `json:"certificate,omitempty"`
	CertificateIDs []string              `json:"certificateIds,omitempty"`
}

// BackendAuthorization is an Authorization header scheme and parameter.
type BackendAuthorization struct {
	Scheme    string `json:"scheme"`
	Parameter Secret `json:"parameter"`
}

// BackendTLS controls certificate validation toward the backend.
type BackendTLS struct {
	ValidateCertificateChain *bool `json:"validateCertificateChain,omitempty"`
	ValidateCertificateName  *bool `json:"validateCertificateName,omitempty"`
}

// BackendProxy is an HTTP proxy used to reach the backend.
type BackendProxy struct {
	URL      string `json:"url"`
	Username string `json:"username,omitempty"`
	Password Secret `json:"password,omitempty"`
}

// CircuitBreaker holds the backend's circuit breaker rules.
type CircuitBreaker struct {
	Rules []CircuitBreakerRule `json:"rules"`
}

// CircuitBreakerRule trips the breaker when FailureCondition holds.
type CircuitBreakerRule struct {
	Name             string           `json:"name"`
	FailureCondition FailureCondition `json:"failureCondition"`
	TripDuration     string           `json:"tripDuration"`
	AcceptRetryAfter bool             `json:"acceptRetryAfter,omitempty"`
}

// FailureCondition counts failures within Interval.
type FailureCondition struct {
	Count            int               `json:"count,omitempty"`
	Percentage       int               `json:"percentage,omitempty"`
	Interval         string            `json:"interval"`
	StatusCodeRanges []StatusCodeRange `json:"statusCodeRanges,omitempty"`
	ErrorReasons     []string          `json:"errorReasons,omitempty"`
}

// StatusCodeRange is an inclusive range of HTTP status codes.
type StatusCodeRange struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// BackendPoolConfig lists the members of a Pool backend.
type BackendPoolConfig struct {
	Services []PoolService `json:"services"`
}

// PoolService is one member of a backend pool.
type PoolService struct {
	ID       string `json:"id"`
	Priority int    `json:"priority,omitempty"`
	Weight   int    `json:"weight,omitempty"`
}

// Certificate is a certificate with its private key, used for TLS
// hostnames and client certificates toward backends.
type Certificate struct {
	Name       string                `json:"name"`
	Properties CertificateProperties `json:"properties"`
}

// CertificateProperties holds either a base64 PKCS#12 (Data, Password), as
// ARM does, or a PEM bundle with the certificate chain and the private key.
type CertificateProperties struct {
	Data       Secret `json:"data,omitempty"`
	Password   Secret `json:"password,omitempty"`
	PEM        Secret `json:"pem,omitempty"`
	Subject    string `json:"subject,omitempty"`
	Thumbprint string `json:"thumbprint,omitempty"`
}

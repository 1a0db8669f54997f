package expr

import "time"

// The gateway exposes the APIM `context` object through these interfaces.
// Per-request, lazily computed parts (request, response, headers, body,
// variables, URLs) are interfaces; static descriptive data (API, operation,
// product, subscription, user, deployment, last error) are plain structs so
// the gateway can build them once per configuration or per subscription.

// Context is the `context` object of a policy expression.
type Context interface {
	Request() Request
	Response() Response // nil before the backend responded
	Variables() Variables
	Api() *ApiInfo
	Operation() *OperationInfo
	Product() *ProductInfo           // nil when not scoped to a product
	Subscription() *SubscriptionInfo // nil for keyless calls
	User() *UserInfo                 // nil when keyless
	Deployment() *DeploymentInfo
	LastError() *ErrorInfo // nil outside on-error
	RequestID() string
	Timestamp() time.Time
	Elapsed() time.Duration
	Trace(source, message string)
}

// Request is context.Request.
type Request interface {
	Method() string
	Url() URL
	OriginalUrl() URL
	Headers() MultiMap
	IpAddress() string
	MatchedParameters() StringMap
	Body() Body // nil when there is no body
}

// Response is context.Response and the IResponse stored by send-request.
type Response interface {
	StatusCode() int
	StatusReason() string
	Headers() MultiMap
	Body() Body
}

// URL is context.Request.Url / OriginalUrl and context.Api.ServiceUrl.
type URL interface {
	Scheme() string
	Host() string
	Port() int
	Path() string
	QueryString() string // including the leading '?', or ""
	Query() MultiMap
}

// MultiMap is a read-only dictionary of string arrays (headers: case
// insensitive; query: as the gateway decides).
type MultiMap interface {
	Get(name string) ([]string, bool)
	Names() []string
}

// StringMap is a read-only dictionary of strings (MatchedParameters).
type StringMap interface {
	Get(name string) (string, bool)
	Names() []string
}

// Body gives the message body. preserveContent=false means the body is
// consumed: APIM returns an empty body to later readers.
type Body interface {
	Read(preserveContent bool) ([]byte, error)
}

// Variables is context.Variables; Set is used by set-variable and by
// expressions that assign through the indexer.
type Variables interface {
	Get(name string) (Value, bool)
	Set(name string, v Value)
}

// ApiInfo is context.Api.
type ApiInfo struct {
	Id, Name, Path, Version, Revision string
	IsCurrentRevision                 bool
	ServiceUrl                        URL
}

// OperationInfo is context.Operation.
type OperationInfo struct{ Id, Name, Method, UrlTemplate string }

// ProductInfo is context.Product.
type ProductInfo struct {
	Id, Name                               string
	ApprovalRequired, SubscriptionRequired bool
}

// SubscriptionInfo is context.Subscription.
type SubscriptionInfo struct {
	Id, Name, Key, PrimaryKey, SecondaryKey string
	CreatedDate                             time.Time
}

// UserInfo is context.User.
type UserInfo struct {
	Id, Email, FirstName, LastName, Note string
	Groups                               []GroupInfo
}

// GroupInfo is an element of context.User.Groups.
type GroupInfo struct{ Id, Name string }

// DeploymentInfo is context.Deployment.
type DeploymentInfo struct{ Region, ServiceName, GatewayId string }

// ErrorInfo is context.LastError.
type ErrorInfo struct{ Source, Reason, Message, Scope, Section, Path, PolicyId string }

// Env is the per-evaluation environment.
type Env struct {
	Context Context
	// Now overrides the clock for DateTime.UtcNow (tests); nil means time.Now.
	Now func() time.Time
}

func (ev *evaluator) now() time.Time {
	if ev.env != nil && ev.env.Now != nil {
		return ev.env.Now()
	}
	return time.Now()
}

var contextMembers = map[string]bool{
	"Request": true, "Response": true, "Variables": true, "Api": true, "Operation": true, "Product": true,
	"Subscription": true, "User": true, "Deployment": true, "LastError": true, "RequestId": true,
	"Timestamp": true, "Elapsed": true, "Tracing": true,
}

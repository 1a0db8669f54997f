package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
)

// parseIssues parses doc and returns its issues, nil when it is valid. Any
// error other than a *config.ValidationError fails the test.
func parseIssues(t *testing.T, doc string) []config.Issue {
	t.Helper()
	_, err := config.Parse([]byte(doc))
	if err == nil {
		return nil
	}
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Parse error = %v (%T), want a *config.ValidationError", err, err)
	}
	if len(ve.Issues) == 0 {
		t.Fatalf("Parse returned a ValidationError without issues")
	}
	return ve.Issues
}

func issuePaths(issues []config.Issue) []string {
	out := make([]string, len(issues))
	for i, is := range issues {
		out[i] = is.Path
	}
	return out
}

func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		want []string // every issue path, in order
	}{
		{
			name: "unknown fields and wrong types everywhere, with array indices",
			doc: `{
				"schemaVersion": "1.0",
				"apis": [
					{"name": "a", "properties": {"path": "a", "Path": "b"}},
					{"name": "b", "properties": {"path": "b"}},
					{"name": "c", "properties": {"path": 3, "protocols": "https"}, "operations": [
						{"name": "x", "properties": {"method": "GET", "urlTemplate": "/", "templateParameters": [
							{"name": "p"}, {"name": "q", "required": "yes"}
						]}}
					]}
				],
				"subscriptions": [{"name": "s", "properties": {"scope": "/apis", "primaryKey": "k", "colour": "red"}}],
				"backends": [{"name": "b", "properties": {"url": "http://b", "pool": {"services": [{"id": "x", "weight": 1.5}]}}}]
			}`,
			want: []string{
				"$.apis[0].properties.Path",
				"$.apis[2].operations[0].properties.templateParameters[1].required",
				"$.apis[2].properties.path",
				"$.apis[2].properties.protocols",
				"$.backends[0].properties.pool.services[0].weight",
				"$.subscriptions[0].properties.colour",
			},
		},
		{
			name: "reference and consistency problems in every collection",
			doc: `{
				"schemaVersion": "1.1",
				"gateway": {"hostnames": [{"hostname": "api..example"}]},
				"apis": [
					{"name": "echo", "properties": {"path": "echo"}, "operations": [
						{"name": "get", "properties": {"method": "GET", "urlTemplate": "/x"}},
						{"name": "bad", "properties": {"method": "GET", "urlTemplate": "x"}}
					]},
					{"name": "echo2", "properties": {"path": "echo", "serviceUrl": "ftp://echo"}}
				],
				"backends": [{"name": "pool", "properties": {"type": "Pool", "pool": {"services": [{"id": "nope"}]}}}],
				"products": [{"name": "starter", "apis": ["echo", "missing"]}],
				"subscriptions": [
					{"name": "alice", "properties": {"scope": "/products/nope", "primaryKey": "short"}},
					{"name": "bob", "properties": {"scope": "/apis/nope", "primaryKey": "bob-primary-key", "state": "paused"}}
				],
				"namedValues": [{"name": "nv", "properties": {"displayName": "bad name", "value": "v"}}]
			}`,
			want: []string{
				"$.schemaVersion",
				"$.gateway.hostnames[0].hostname",
				"$.apis[0].operations[1].properties.urlTemplate",
				"$.apis[1].properties.serviceUrl",
				"$.apis[1].properties.path",
				"$.backends[0].properties.pool.services[0].id",
				"$.products[0].apis[1]",
				"$.subscriptions[0].properties.scope",
				"$.subscriptions[0].properties.primaryKey",
				"$.subscriptions[1].properties.state",
				"$.subscriptions[1].properties.scope",
				"$.namedValues[0].properties.displayName",
			},
		},
		{
			name: "one entity with several problems reports each",
			doc: `{
				"schemaVersion": "1.0",
				"backends": [{"name": "b", "properties": {
					"url": "https://b.example?x=1",
					"protocol": "grpc",
					"circuitBreaker": {"rules": [{"name": "r",
						"failureCondition": {"percentage": 150, "interval": "1m", "statusCodeRanges": [{"min": 500, "max": 400}]},
						"tripDuration": "PT"}]}
				}}]
			}`,
			want: []string{
				"$.backends[0].properties.protocol",
				"$.backends[0].properties.url",
				"$.backends[0].properties.circuitBreaker.rules[0].failureCondition.interval",
				"$.backends[0].properties.circuitBreaker.rules[0].tripDuration",
				"$.backends[0].properties.circuitBreaker.rules[0].failureCondition.percentage",
				"$.backends[0].properties.circuitBreaker.rules[0].failureCondition.statusCodeRanges[0]",
			},
		},
		{
			// Decoding problems are reported first and alone: the
			// reference checks would run on a half-decoded snapshot.
			name: "shape problems come without reference problems",
			doc: `{
				"schemaVersion": "1.0",
				"apis": [{"name": "echo", "properties": {"path": "echo", "isCurrent": "true"}}],
				"subscriptions": [{"name": "alice", "properties": {"scope": "/products/nope", "primaryKey": "alice-primary"}}]
			}`,
			want: []string{"$.apis[0].properties.isCurrent"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			issues := parseIssues(t, tt.doc)
			if got := issuePaths(issues); !slices.Equal(got, tt.want) {
				t.Errorf("issue paths:\n got %q\nwant %q\nissues: %v", got, tt.want, issues)
			}
		})
	}
}

// issueCase is a document that must give exactly one issue, at path with
// msg, after the issues in also.
type issueCase struct {
	name string
	doc  string
	path string
	msg  string
	also []config.Issue // reported before the one under test
}

func checkIssueCases(t *testing.T, tests []issueCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			issues := parseIssues(t, tt.doc)
			want := append(tt.also, config.Issue{Path: tt.path, Message: tt.msg})
			if !reflect.DeepEqual(issues, want) {
				t.Errorf("issues = %v, want %v", issues, want)
			}
		})
	}
}

func TestParseWrongTypeMessages(t *testing.T) {
	t.Parallel()
	tests := []issueCase{
		{name: "number for string", doc: `{"schemaVersion": 1.0}`, path: "$.schemaVersion", msg: "must be a string, found a number"},
		{name: "string for boolean", doc: `{"schemaVersion": "1.0", "gateway": {"rejectUnknownHostnames": "yes"}}`, path: "$.gateway.rejectUnknownHostnames", msg: "must be a boolean, found a string"},
		{name: "fraction for integer", doc: `{"schemaVersion": "1.0", "products": [{"name": "p", "properties": {"subscriptionsLimit": 1.5}}]}`, path: "$.products[0].properties.subscriptionsLimit", msg: "must be an integer, found a number"},
		{name: "object for array", doc: `{"schemaVersion": "1.0", "apis": {"name": "echo"}}`, path: "$.apis", msg: "must be an array, found an object"},
		{name: "array for object", doc: `{"schemaVersion": "1.0", "gateway": []}`, path: "$.gateway", msg: "must be an object, found an array"},
		{name: "string for map", doc: `{"schemaVersion": "1.0", "backends": [{"name": "b", "properties": {"url": "http://b", "credentials": {"header": "x"}}}]}`, path: "$.backends[0].properties.credentials.header", msg: "must be an object, found a string"},
		{name: "map value", doc: `{"schemaVersion": "1.0", "backends": [{"name": "b", "properties": {"url": "http://b", "credentials": {"header": {"x-key": "v"}}}}]}`, path: "$.backends[0].properties.credentials.header.x-key", msg: "must be an array, found a string"},
		{name: "secret must be a string", doc: `{"schemaVersion": "1.0", "subscriptions": [{"name": "s", "properties": {"scope": "/apis", "primaryKey": 12345678}}]}`, path: "$.subscriptions[0].properties.primaryKey", msg: "must be a string, found a number"},
		{name: "document is not an object", doc: `[]`, path: "$", msg: "must be an object, found an array"},
	}
	checkIssueCases(t, tests)
}

func TestParseSuggestsSpelling(t *testing.T) {
	t.Parallel()
	tests := []issueCase{
		{
			name: "capitalised",
			doc:  `{"schemaVersion": "1.0", "apis": [{"name": "echo", "properties": {"Path": "echo"}}]}`,
			path: "$.apis[0].properties.Path",
			msg:  `unknown field (did you mean "path"?)`,
		},
		{
			name: "lower-cased camel case",
			doc:  `{"schemaVersion": "1.0", "subscriptions": [{"name": "s", "properties": {"scope": "/apis", "primarykey": "0123456789"}}]}`,
			path: "$.subscriptions[0].properties.primarykey",
			msg:  `unknown field (did you mean "primaryKey"?)`,
		},
		{
			name: "Go spelling of an acronym",
			doc:  `{"schemaVersion": "1.0", "apis": [{"name": "echo", "properties": {"path": "echo", "ServiceURL": "http://echo"}}]}`,
			path: "$.apis[0].properties.ServiceURL",
			msg:  `unknown field (did you mean "serviceUrl"?)`,
		},
		{
			name: "top level",
			doc:  `{"SchemaVersion": "1.0"}`,
			path: "$.SchemaVersion",
			msg:  `unknown field (did you mean "schemaVersion"?)`,
		},
		{
			name: "inside a map value",
			doc:  `{"schemaVersion": "1.0", "apis": [{"name": "a", "properties": {"path": "a"}, "operations": [{"name": "o", "properties": {"method": "GET", "urlTemplate": "/", "responses": [{"statusCode": 200, "representations": [{"contentType": "application/json", "examples": {"default": {"Value": 1}}}]}]}}]}]}`,
			path: "$.apis[0].operations[0].properties.responses[0].representations[0].examples.default.Value",
			msg:  `unknown field (did you mean "value"?)`,
		},
		{
			name: "YAML",
			doc:  "schemaVersion: \"1.0\"\ngateway:\n  hostnames:\n    - hostName: api.example\n",
			path: "$.gateway.hostnames[0].hostName",
			msg:  `unknown field (did you mean "hostname"?)`,
		},
		{
			name: "no suggestion for a real typo",
			doc:  `{"schemaVersion": "1.0", "apis": [{"name": "echo", "properties": {"pth": "echo"}}]}`,
			path: "$.apis[0].properties.pth",
			msg:  "unknown field",
			// A real typo also leaves the field it meant missing.
			also: []config.Issue{{Path: "$.apis[0].properties.path", Message: "is required"}},
		},
	}
	checkIssueCases(t, tests)
}

func TestParseYAMLAndJSONAgree(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string // JSON; the YAML twin is generated from it
	}{
		{name: "minimal", doc: `{"schemaVersion": "1.0"}`},
		{
			name: "valid with every value kind",
			doc: `{
				"schemaVersion": "1.0",
				"gateway": {"name": "gw", "rejectUnknownHostnames": true, "hostnames": [{"hostname": "api.example"}]},
				"apis": [{"name": "echo", "properties": {"path": "echo", "subscriptionRequired": false, "protocols": ["https"]},
					"operations": [{"name": "get", "properties": {"method": "GET", "urlTemplate": "/{id}", "responses": [
						{"statusCode": 200, "representations": [{"contentType": "application/json",
							"examples": {"default": {"value": {"id": 1, "tags": ["a", "b"], "ok": true, "none": null, "ratio": 0.5}}}}]}
					]}}]}],
				"products": [{"name": "p", "properties": {"subscriptionsLimit": 3}, "apis": ["echo"]}],
				"subscriptions": [{"name": "s", "properties": {"scope": "/products/p", "primaryKey": "0123456789"}}]
			}`,
		},
		{
			name: "shape problems",
			doc:  `{"schemaVersion": "1.0", "apis": [{"name": "echo", "properties": {"Path": "echo", "isCurrent": "yes"}}]}`,
		},
		{
			name: "reference problems",
			doc: `{"schemaVersion": "1.0", "apis": [{"name": "echo", "properties": {"path": "echo"}}, {"name": "echo2", "properties": {"path": "echo"}}],
				"subscriptions": [{"name": "s", "properties": {"scope": "/products/p", "primaryKey": "0123456789"}}]}`,
		},
		{name: "wrong schema version", doc: `{"schemaVersion": "2.0"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			yamlDoc, err := yaml.JSONToYAML([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(strings.TrimSpace(string(yamlDoc)), "{") {
				t.Fatalf("generated YAML looks like JSON:\n%s", yamlDoc)
			}
			fromJSON, errJSON := config.Parse([]byte(tt.doc))
			fromYAML, errYAML := config.Parse(yamlDoc)
			if (errJSON == nil) != (errYAML == nil) {
				t.Fatalf("JSON error = %v, YAML error = %v", errJSON, errYAML)
			}
			if errJSON != nil {
				var vj, vy *config.ValidationError
				if !errors.As(errJSON, &vj) || !errors.As(errYAML, &vy) {
					t.Fatalf("want ValidationErrors, got %T and %T", errJSON, errYAML)
				}
				if !reflect.DeepEqual(vj.Issues, vy.Issues) {
					t.Errorf("issues differ:\nJSON %v\nYAML %v\nYAML document:\n%s", vj.Issues, vy.Issues, yamlDoc)
				}
				return
			}
			// json.RawMessage keeps the input's spacing; compare values.
			if j, y := reencode(t, fromJSON), reencode(t, fromYAML); !reflect.DeepEqual(j, y) {
				t.Errorf("snapshots differ:\nJSON %v\nYAML %v", j, y)
			}
			if fromJSON.Subscriptions != nil && fromJSON.Subscriptions[0].Properties.PrimaryKey != fromYAML.Subscriptions[0].Properties.PrimaryKey {
				t.Errorf("secrets differ")
			}
		})
	}
}

func reencode(t *testing.T, s *config.Snapshot) any {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseHandWrittenYAML(t *testing.T) {
	t.Parallel()
	yamlDoc := `
# comments are fine
schemaVersion: "1.0"
apis:
  - name: echo
    properties: {path: echo, subscriptionRequired: false}
    policy: |
      <policies><inbound><base /></inbound></policies>
    operations:
      - name: get
        properties:
          method: GET
          urlTemplate: /resource/{id}
`
	jsonDoc := `{"schemaVersion": "1.0", "apis": [{"name": "echo", "properties": {"path": "echo", "subscriptionRequired": false},
		"policy": "<policies><inbound><base /></inbound></policies>\n",
		"operations": [{"name": "get", "properties": {"method": "GET", "urlTemplate": "/resource/{id}"}}]}]}`
	fromYAML, err := config.Parse([]byte(yamlDoc))
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := config.Parse([]byte(jsonDoc))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromYAML, fromJSON) {
		t.Errorf("YAML %+v\nJSON %+v", fromYAML, fromJSON)
	}
}

func TestParseDocumentErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		msg  string // substring of the one issue, at "$"
	}{
		{name: "empty", doc: "", msg: "document is empty"},
		{name: "only whitespace", doc: " \n\t\r\n", msg: "document is empty"},
		{name: "broken JSON names the line", doc: "{\n\"schemaVersion\": \"1.0\",\n}", msg: "(line 3)"},
		{name: "broken YAML", doc: "schemaVersion: \"1.0\"\napis: [\n", msg: "not valid JSON or YAML"},
		{name: "data after the document", doc: `{"schemaVersion": "1.0"} {}`, msg: "unexpected data after the JSON document"},
		{name: "null", doc: "null", msg: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			issues := parseIssues(t, tt.doc)
			if len(issues) != 1 {
				t.Fatalf("issues = %v, want one", issues)
			}
			if tt.msg == "" {
				return
			}
			if issues[0].Path != "$" || !strings.Contains(issues[0].Message, tt.msg) {
				t.Errorf("issue = %v, want $: ...%s...", issues[0], tt.msg)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	t.Parallel()
	err := &config.ValidationError{Source: "/apim/config/snapshot.json", Issues: []config.Issue{
		{Path: "$.apis[0].name", Message: "is required"},
		{Path: "$.schemaVersion", Message: `must be "1.0", found "2.0"`},
	}}
	want := "/apim/config/snapshot.json: 2 problem(s) in configuration snapshot\n" +
		"  $.apis[0].name: is required\n" +
		`  $.schemaVersion: must be "1.0", found "2.0"`
	if got := err.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestSecretIsNeverPrinted(t *testing.T) {
	t.Parallel()
	const (
		primary  = "primary-key-d41d8cd98f00"
		second   = "secondary-key-b204e9800998"
		password = "proxy-password-ecf8427e"
		nvValue  = "named-value-secret-9800998e"
		bearer   = "bearer-token-cd98f00b204e"
		header   = "header-secret-8427ecf8"
		pem      = "-----BEGIN PRIVATE KEY-----\npem-body-00b204e98009\n-----END PRIVATE KEY-----\n"
	)
	secrets := []string{primary, second, password, nvValue, bearer, header, "pem-body-00b204e98009"}
	doc := fmt.Sprintf(`{
		"schemaVersion": "1.0",
		"subscriptions": [{"name": "alice", "properties": {"scope": "/apis", "primaryKey": %q, "secondaryKey": %q}}],
		"namedValues": [{"name": "nv", "properties": {"displayName": "nv", "value": %q, "secret": true}}],
		"backends": [{"name": "b", "properties": {"url": "https://b.example",
			"credentials": {"header": {"x-key": [%q]}, "authorization": {"scheme": "Bearer", "parameter": %q}},
			"proxy": {"url": "http://proxy.example", "username": "u", "password": %q}}}],
		"certificates": [{"name": "c", "properties": {"pem": %q}}]
	}`, primary, second, nvValue, header, bearer, password, pem)
	s, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Subscriptions[0].Properties.PrimaryKey.Value(); got != primary {
		t.Fatalf("Value() = %q, want the key", got)
	}
	sub := s.Subscriptions[0]
	marshal := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name string
		out  string
	}{
		{name: "%v snapshot", out: fmt.Sprintf("%v", s)},
		{name: "%+v snapshot", out: fmt.Sprintf("%+v", s)},
		{name: "%#v snapshot", out: fmt.Sprintf("%#v", s)},
		{name: "%v subscription", out: fmt.Sprintf("%v", sub)},
		{name: "%+v subscription properties", out: fmt.Sprintf("%+v", sub.Properties)},
		{name: "%#v subscription properties", out: fmt.Sprintf("%#v", sub.Properties)},
		{name: "%v secret", out: fmt.Sprintf("%v", sub.Properties.PrimaryKey)},
		{name: "%s secret", out: fmt.Sprintf("%s", sub.Properties.PrimaryKey)},
		{name: "%q secret", out: fmt.Sprintf("%q", sub.Properties.PrimaryKey)},
		{name: "%#v secret", out: fmt.Sprintf("%#v", sub.Properties.PrimaryKey)},
		{name: "Println secret", out: fmt.Sprintln(sub.Properties.PrimaryKey)},
		{name: "%v credentials map", out: fmt.Sprintf("%v", s.Backends[0].Properties.Credentials.Header)},
		{name: "json.Marshal snapshot", out: marshal(s)},
		{name: "json.Marshal secret", out: marshal(sub.Properties.PrimaryKey)},
		{name: "json.MarshalIndent named values", out: func() string {
			b, err := json.MarshalIndent(s.NamedValues, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, secret := range secrets {
				if strings.Contains(tt.out, secret) {
					t.Errorf("output leaks %q:\n%s", secret, tt.out)
				}
			}
			if !strings.Contains(tt.out, "[redacted]") {
				t.Errorf("output has no redaction marker:\n%s", tt.out)
			}
		})
	}
}

func TestSecretZeroAndDecode(t *testing.T) {
	t.Parallel()
	var empty config.Secret
	if !empty.IsZero() || empty.String() != "" || fmt.Sprint(empty) != "" {
		t.Errorf("empty secret: IsZero %v, String %q", empty.IsZero(), empty.String())
	}
	var s config.Secret
	if err := json.Unmarshal([]byte(`"abc"`), &s); err != nil || s.Value() != "abc" {
		t.Errorf("Unmarshal string: %q, %v", s.Value(), err)
	}
	if err := json.Unmarshal([]byte(`42`), &s); err == nil {
		t.Errorf("Unmarshal number: want an error")
	}
	// An empty secret stays out of omitempty output.
	b, err := json.Marshal(config.SubscriptionProperties{Scope: "/apis", PrimaryKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secondaryKey") {
		t.Errorf("Marshal = %s, want no secondaryKey", b)
	}
}

func TestSecretNotInErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		doc    string
		path   string
	}{
		{
			name:   "duplicate key across subscriptions",
			secret: "shared-key-6f1c2d3e4f5a",
			doc: `{"schemaVersion": "1.0", "subscriptions": [
				{"name": "alice", "properties": {"scope": "/apis", "primaryKey": "shared-key-6f1c2d3e4f5a"}},
				{"name": "bob", "properties": {"scope": "/apis", "primaryKey": "shared-key-6f1c2d3e4f5a"}}]}`,
			path: "$.subscriptions[1].properties.primaryKey",
		},
		{
			name:   "primary and secondary the same",
			secret: "same-key-4f5a6f1c2d3e",
			doc: `{"schemaVersion": "1.0", "subscriptions": [
				{"name": "alice", "properties": {"scope": "/apis", "primaryKey": "same-key-4f5a6f1c2d3e", "secondaryKey": "same-key-4f5a6f1c2d3e"}}]}`,
			path: "$.subscriptions[0].properties.secondaryKey",
		},
		{
			name:   "short key",
			secret: "k3y-s3c",
			doc:    `{"schemaVersion": "1.0", "subscriptions": [{"name": "alice", "properties": {"scope": "/apis", "primaryKey": "k3y-s3c"}}]}`,
			path:   "$.subscriptions[0].properties.primaryKey",
		},
		{
			name:   "certificate data that is not base64",
			secret: "not-base64!!secret",
			doc:    `{"schemaVersion": "1.0", "certificates": [{"name": "c", "properties": {"data": "not-base64!!secret"}}]}`,
			path:   "$.certificates[0].properties.data",
		},
		{
			name:   "PEM without a PEM block",
			secret: "pem-secret-material",
			doc:    `{"schemaVersion": "1.0", "certificates": [{"name": "c", "properties": {"pem": "pem-secret-material"}}]}`,
			path:   "$.certificates[0].properties.pem",
		},
		{
			name:   "function key in a service URL query",
			secret: "fn-key-6f1c2d3e",
			doc:    `{"schemaVersion": "1.0", "apis": [{"name": "f", "properties": {"path": "f", "serviceUrl": "https://f.example/api/x?code=fn-key-6f1c2d3e"}}]}`,
			path:   "$.apis[0].properties.serviceUrl",
		},
		{
			name:   "password in a proxy URL",
			secret: "proxy-pass-4f5a",
			doc: `{"schemaVersion": "1.0", "backends": [{"name": "b", "properties": {"url": "https://b.example",
				"proxy": {"url": "socks5://user:proxy-pass-4f5a@proxy.example"}}}]}`,
			path: "$.backends[0].properties.proxy.url",
		},
		{
			name:   "URL that does not parse",
			secret: "user:pa%zz-secret",
			doc:    `{"schemaVersion": "1.0", "backends": [{"name": "b", "properties": {"url": "https://user:pa%zz-secret@b.example/"}}]}`,
			path:   "$.backends[0].properties.url",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.doc))
			var ve *config.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse error = %v, want a ValidationError", err)
			}
			if got := issuePaths(ve.Issues); !slices.Equal(got, []string{tt.path}) {
				t.Errorf("issue paths = %q, want [%s]", got, tt.path)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error leaks the secret:\n%v", err)
			}
			if strings.Contains(fmt.Sprintf("%+v", ve.Issues), tt.secret) {
				t.Errorf("issues leak the secret: %+v", ve.Issues)
			}
		})
	}
}

func TestRefName(t *testing.T) {
	t.Parallel()
	const svc = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso"
	tests := []struct {
		name       string
		ref        string
		collection string
		want       string
	}{
		{name: "ARM id", ref: svc + "/products/starter", collection: "products", want: "starter"},
		{name: "ARM id with a trailing slash", ref: svc + "/products/starter/", collection: "products", want: "starter"},
		{name: "ARM id of a child resource", ref: svc + "/products/starter/apis/echo", collection: "products", want: "starter"},
		{name: "ARM id of a child resource, child collection", ref: svc + "/products/starter/apis/echo", collection: "apis", want: "echo"},
		{name: "ARM id of a revision", ref: svc + "/apis/echo;rev=2", collection: "apis", want: "echo;rev=2"},
		{name: "ARM id, collection case differs", ref: svc + "/apiversionsets/orders", collection: "apiVersionSets", want: "orders"},
		{name: "short form", ref: "/products/starter", collection: "products", want: "starter"},
		{name: "short form keeps the name's case", ref: "/Products/Starter", collection: "products", want: "Starter"},
		{name: "short form of version set", ref: "/apiVersionSets/orders", collection: "apiVersionSets", want: "orders"},
		{name: "bare name", ref: "starter", collection: "products", want: "starter"},
		{name: "bare name with spaces around", ref: "  starter\n", collection: "products", want: "starter"},
		{name: "bare revision name", ref: "echo;rev=2", collection: "apis", want: "echo;rev=2"},
		{name: "other collection", ref: "/products/starter", collection: "apis", want: ""},
		{name: "other collection ARM id", ref: svc + "/backends/east", collection: "certificates", want: ""},
		{name: "collection without a name", ref: "/products/", collection: "products", want: ""},
		{name: "empty", ref: "", collection: "products", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := config.RefName(tt.ref, tt.collection); got != tt.want {
				t.Errorf("RefName(%q, %q) = %q, want %q", tt.ref, tt.collection, got, tt.want)
			}
		})
	}
}

func TestScopeKind(t *testing.T) {
	t.Parallel()
	const svc = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso"
	tests := []struct {
		name, scope, kind, ref string
	}{
		{name: "all APIs", scope: "/apis", kind: "all"},
		{name: "all APIs, ARM id", scope: svc + "/apis", kind: "all"},
		{name: "service ARM id", scope: svc + "/", kind: "all"},
		{name: "one API", scope: "/apis/echo", kind: "api", ref: "echo"},
		{name: "one API, ARM id", scope: svc + "/apis/echo", kind: "api", ref: "echo"},
		{name: "one product", scope: "/products/starter/", kind: "product", ref: "starter"},
		{name: "one product, ARM id", scope: svc + "/products/starter", kind: "product", ref: "starter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kind, ref := config.ScopeKind(tt.scope)
			if kind != tt.kind || ref != tt.ref {
				t.Errorf("ScopeKind(%q) = %q, %q, want %q, %q", tt.scope, kind, ref, tt.kind, tt.ref)
			}
			doc := fmt.Sprintf(`{"schemaVersion": "1.0", "apis": [{"name": "echo", "properties": {"path": "echo"}}],
				"products": [{"name": "starter"}],
				"subscriptions": [{"name": "s", "properties": {"scope": %q, "primaryKey": "0123456789"}}]}`, tt.scope)
			if issues := parseIssues(t, doc); issues != nil {
				t.Errorf("scope %q rejected: %v", tt.scope, issues)
			}
		})
	}
}

func TestOperationMethods(t *testing.T) {
	t.Parallel()
	checkField(t, `{"schemaVersion": "1.0", "apis": [{"name": "echo", "properties": {"path": "echo"},
		"operations": [{"name": "op", "properties": {"method": %q, "urlTemplate": "/"}}]}]}`,
		"$.apis[0].operations[0].properties.method", []fieldCase{
			{name: "GET", value: "GET", valid: true},
			{name: "lower case", value: "patch", valid: true},
			{name: "any", value: "*", valid: true},
			{name: "extension method", value: "M-SEARCH", valid: true},
			{name: "digits", value: "BIND2", valid: true},
			{name: "spaces around", value: " POST ", valid: true},
			{name: "empty", value: ""},
			{name: "two methods", value: "GET,POST"},
			{name: "space inside", value: "GET POST"},
		})
}

func TestSubscriptionKeyHeaderNames(t *testing.T) {
	t.Parallel()
	checkField(t, `{"schemaVersion": "1.0", "apis": [{"name": "echo",
		"properties": {"path": "echo", "subscriptionKeyParameterNames": {"header": %q}}}]}`,
		"$.apis[0].properties.subscriptionKeyParameterNames.header", []fieldCase{
			{name: "default", value: "Ocp-Apim-Subscription-Key", valid: true},
			{name: "with digits", value: "X-Api-Key-V2", valid: true},
			{name: "space", value: "X Key"},
			{name: "colon", value: "X-Key:"},
		})
}

func TestDurations(t *testing.T) {
	t.Parallel()
	checkField(t, `{"schemaVersion": "1.0", "backends": [{"name": "b", "properties": {"url": "https://b.example",
		"circuitBreaker": {"rules": [{"name": "r", "failureCondition": {"count": 1, "interval": "PT1M"}, "tripDuration": %q}]}}}]}`,
		"$.backends[0].properties.circuitBreaker.rules[0].tripDuration", []fieldCase{
			{name: "minute", value: "PT1M", valid: true},
			{name: "fractional seconds", value: "PT0.5S", valid: true},
			{name: "day and hours", value: "P1DT12H", valid: true},
			{name: "weeks", value: "P2W", valid: true},
			{name: "months, not minutes", value: "P1M", valid: true},
			{name: "empty", value: ""},
			{name: "only P", value: "P"},
			{name: "only PT", value: "PT"},
			{name: "dangling T", value: "P1DT"},
			{name: "Go duration", value: "30s"},
			{name: "lower case", value: "pt1m"},
			{name: "negative", value: "-PT1M"},
		})
}

// fieldCase is one value of a single field and whether the loader must
// accept it.
type fieldCase struct {
	name  string
	value string
	valid bool
}

// checkField parses docFormat with each value in place of its %q and
// expects no issue for a valid value and exactly one, at path, otherwise.
func checkField(t *testing.T, docFormat, path string, cases []fieldCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			issues := parseIssues(t, fmt.Sprintf(docFormat, tt.value))
			if tt.valid && issues != nil {
				t.Errorf("%q rejected: %v", tt.value, issues)
			}
			if !tt.valid && !slices.Equal(issuePaths(issues), []string{path}) {
				t.Errorf("%q: issues = %v, want one at %s", tt.value, issues, path)
			}
		})
	}
}

func TestResolvePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, config.SnapshotFile)
	if err := os.WriteFile(file, []byte(`{"schemaVersion": "1.0"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte("schemaVersion: \"1.0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr bool
	}{
		{name: "folder holding snapshot.json", path: dir, want: file},
		{name: "file", path: file, want: file},
		{name: "file with another name", path: other, want: other},
		{name: "folder without snapshot.json", path: empty, want: filepath.Join(empty, config.SnapshotFile)},
		{name: "missing", path: filepath.Join(dir, "missing"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := config.ResolvePath(tt.path)
			if tt.wantErr {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("ResolvePath(%q) error = %v, want fs.ErrNotExist", tt.path, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ResolvePath(%q) = %q, %v, want %q", tt.path, got, err, tt.want)
			}
		})
	}
	t.Run("Load reads the folder's snapshot.json", func(t *testing.T) {
		t.Parallel()
		s, err := config.Load(dir)
		if err != nil || s.SchemaVersion != "1.0" {
			t.Errorf("Load(%q) = %+v, %v", dir, s, err)
		}
	})
	t.Run("Load of a folder without snapshot.json", func(t *testing.T) {
		t.Parallel()
		if _, err := config.Load(empty); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%q) error = %v, want fs.ErrNotExist", empty, err)
		}
	})
}

func TestLoadSizeAndEmptiness(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name  string
		setup func(path string) error
		check func(t *testing.T, err error)
	}{
		{
			name: "larger than MaxSnapshotBytes",
			setup: func(path string) error {
				f, err := os.Create(path)
				if err != nil {
					return err
				}
				// Sparse: no 64 MiB written to disk.
				if err := f.Truncate(config.MaxSnapshotBytes + 1); err != nil {
					f.Close()
					return err
				}
				return f.Close()
			},
			check: func(t *testing.T, err error) {
				var ve *config.ValidationError
				if err == nil || errors.As(err, &ve) || !strings.Contains(err.Error(), "larger than") {
					t.Errorf("error = %v, want a size error", err)
				}
			},
		},
		{
			name:  "empty file",
			setup: func(path string) error { return os.WriteFile(path, nil, 0o600) },
			check: func(t *testing.T, err error) {
				var ve *config.ValidationError
				if !errors.As(err, &ve) || !reflect.DeepEqual(ve.Issues, []config.Issue{{Path: "$", Message: "document is empty"}}) {
					t.Errorf("error = %v, want $: document is empty", err)
				}
			},
		},
		{
			name:  "whitespace only",
			setup: func(path string) error { return os.WriteFile(path, []byte("\n\n  \n"), 0o600) },
			check: func(t *testing.T, err error) {
				var ve *config.ValidationError
				if !errors.As(err, &ve) || len(ve.Issues) != 1 || ve.Issues[0].Message != "document is empty" {
					t.Errorf("error = %v, want $: document is empty", err)
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, fmt.Sprintf("snapshot-%d.json", i))
			if err := tt.setup(path); err != nil {
				t.Fatal(err)
			}
			s, err := config.Load(path)
			if s != nil {
				t.Errorf("Load returned a snapshot")
			}
			tt.check(t, err)
			if err != nil && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

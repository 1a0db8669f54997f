package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const schemaPath = "../../schemas/extension-settings.schema.json"

var loadSchema = sync.OnceValues(func() (*Schema, error) {
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		return nil, err
	}
	return ParseSchema(data)
})

func testSchema(t *testing.T) *Schema {
	t.Helper()
	s, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	token  = "GatewayKey gw1&202612312359&c2VjcmV0LXNpZ25hdHVyZQ=="
	secret = "S3cr3t-v4lue-never-print"
)

// writeDir creates a folder laid out like a Kubernetes ConfigMap/Secret mount:
// ..<ts>/<key> files, ..data -> ..<ts>, <key> -> ..data/<key>.
func writeDir(t *testing.T, dir string, kv map[string]string) {
	t.Helper()
	ts := fmt.Sprintf("..%d", time.Now().UnixNano())
	if err := os.MkdirAll(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range kv {
		if err := os.WriteFile(filepath.Join(dir, ts, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for k := range kv {
		link := filepath.Join(dir, k)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
			t.Fatal(err)
		}
	}
}

func load(t *testing.T, plain, prot map[string]string) (*Settings, []Issue) {
	t.Helper()
	root := t.TempDir()
	sd, pd := filepath.Join(root, "settings"), filepath.Join(root, "protected")
	writeDir(t, sd, plain)
	writeDir(t, pd, prot)
	return Load(sd, pd, testSchema(t))
}

func base() map[string]string {
	return map[string]string{"gateway.configuration.uri": "https://contoso.configuration.azure-api.net"}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func find(issues []Issue, sev Severity, key string) *Issue {
	for i := range issues {
		if issues[i].Severity == sev && issues[i].Key == key {
			return &issues[i]
		}
	}
	return nil
}

func TestSchemaCoversEveryKey(t *testing.T) {
	t.Parallel()
	s := testSchema(t)
	for _, k := range []string{
		"gateway.configuration.uri", "gateway.auth.token", "gateway.configuration.backup.enabled",
		"gateway.configuration.backup.persistentVolumeClaim.accessMode", "service.type", "service.annotations",
		"service.instance.heartbeat.port", "telemetry.metrics.cloud", "telemetry.logs.std", "monitoring.ingestionKey",
		"monitoring.uploadInterval", "monitoring.logsIngestion.streamName", "cache.external.connectionString",
		"gateway.auth.azureAd.app.certificatePassword", "replicaCount", "nodeSelector", "tolerations",
	} {
		if _, ok := s.Key(k); !ok {
			t.Errorf("schema lacks %s", k)
		}
	}
	for _, k := range []string{"gateway.auth.token", "monitoring.ingestionKey", "gateway.auth.azureAd.app.secret",
		"gateway.auth.azureAd.app.certificate", "gateway.auth.azureAd.app.certificatePassword", "cache.external.connectionString"} {
		if d, _ := s.Key(k); d == nil || !d.Protected || !d.Live && k != "cache.external.connectionString" {
			t.Errorf("%s: want x-protected (and x-live)", k)
		}
	}
	for _, name := range s.Keys() {
		if d, _ := s.Key(name); d.Description == "" {
			t.Errorf("%s: no description", name)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		plain, prot map[string]string
		key         string
		contains    string
	}{
		{name: "missing uri", plain: map[string]string{}, key: "gateway.configuration.uri", contains: "is required"},
		{name: "empty uri is unset", plain: map[string]string{"gateway.configuration.uri": "\n"}, key: "gateway.configuration.uri", contains: "is required"},
		{name: "missing token with remote uri", plain: base(), key: "gateway.auth.token", contains: "gateway.auth.type = GatewayToken"},
		{name: "bad integer", plain: with(base(), "service.http.port", "abc"), prot: map[string]string{"gateway.auth.token": token}, key: "service.http.port", contains: `"abc" is not an integer`},
		{name: "bad boolean", plain: with(base(), "gateway.configuration.backup.enabled", "maybe"), prot: map[string]string{"gateway.auth.token": token}, key: "gateway.configuration.backup.enabled", contains: "not a boolean"},
		{name: "enum", plain: with(base(), "service.type", "Foo"), prot: map[string]string{"gateway.auth.token": token}, key: "service.type", contains: "LoadBalancer, NodePort, ClusterIP"},
		{name: "port range", plain: with(base(), "service.http.port", "70000"), prot: map[string]string{"gateway.auth.token": token}, key: "service.http.port", contains: "maximum 65535"},
		{name: "bad duration", plain: with(base(), "monitoring.uploadInterval", "60"), prot: map[string]string{"gateway.auth.token": token}, key: "monitoring.uploadInterval", contains: "duration"},
		{name: "bad object", plain: with(base(), "service.annotations", "[1,2]"), prot: map[string]string{"gateway.auth.token": token}, key: "service.annotations", contains: "object"},
		{name: "object of strings", plain: with(base(), "nodeSelector", "{a: {b: c}}"), prot: map[string]string{"gateway.auth.token": token}, key: "nodeSelector", contains: "at a"},
		{name: "protected as plain", plain: with(base(), "gateway.auth.token", token), key: "gateway.auth.token", contains: "--config-protected-settings"},
		{name: "protected alias as plain", plain: with(base(), "gateway.auth.key", token), key: "gateway.auth.token", contains: "gateway.auth.key"},
		{name: "connection string as plain", plain: with(base(), "cache.external.connectionString", secret), prot: map[string]string{"gateway.auth.token": token}, key: "cache.external.connectionString", contains: "protected"},
		{name: "in both folders", plain: with(base(), "service.type", "NodePort"), prot: map[string]string{"gateway.auth.token": token, "service.type": "NodePort"}, key: "service.type", contains: "both"},
		{name: "alias and key", plain: with(base(), "service.http.port", "1", "service.ports.http", "2"), prot: map[string]string{"gateway.auth.token": token}, key: "service.http.port", contains: "set twice"},
		{name: "azure ad app needs credential", plain: with(base(), "gateway.auth.type", "AzureAdApp", "gateway.name", "gw", "gateway.auth.azureAd.tenant.id", "t", "gateway.auth.azureAd.app.id", "a"), key: "gateway.auth.azureAd.app.secret", contains: "one of"},
		{name: "entra needs gateway name", plain: with(base(), "gateway.auth.type", "WorkloadIdentity"), key: "gateway.name", contains: "WorkloadIdentity"},
		{name: "statsd needs endpoint", plain: with(base(), "telemetry.metrics.local", "statsd"), prot: map[string]string{"gateway.auth.token": token}, key: "telemetry.metrics.localStatsd.endpoint", contains: "required"},
		{name: "nodePort needs type", plain: with(base(), "service.http.nodePort", "30080"), prot: map[string]string{"gateway.auth.token": token}, key: "service.type", contains: "service.http.nodePort is set"},
		{name: "ingestion key needs workspace", plain: base(), prot: map[string]string{"gateway.auth.token": token, "monitoring.ingestionKey": secret}, key: "monitoring.workspaceId", contains: "monitoring.ingestionKey"},
		{name: "malformed token", plain: base(), prot: map[string]string{"gateway.auth.token": secret}, key: "gateway.auth.token", contains: "value not shown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, issues := load(t, tc.plain, tc.prot)
			is := find(issues, Error, tc.key)
			if is == nil {
				t.Fatalf("no error for %s; got %v", tc.key, issues)
			}
			t.Log(is.Error())
			if !strings.Contains(is.Message, tc.contains) {
				t.Errorf("message %q lacks %q", is.Message, tc.contains)
			}
			if !strings.Contains(is.Error(), tc.key) {
				t.Errorf("Error() %q does not name the key", is.Error())
			}
			for _, i := range issues {
				if strings.Contains(i.Error(), secret) || strings.Contains(i.Error(), "c2VjcmV0") {
					t.Errorf("issue echoes a protected value: %v", i)
				}
			}
		})
	}
}

func TestValidAndWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		plain, prot map[string]string
		warnKey     string
		warn        string
		check       func(t *testing.T, s *Settings)
	}{
		{name: "local file source needs no token", plain: map[string]string{"gateway.configuration.uri": "file:///apim/local/snapshot.json"},
			check: func(t *testing.T, s *Settings) {
				if s.IsSet("gateway.auth.token") || s.String("gateway.auth.type") != "GatewayToken" {
					t.Error("defaults")
				}
			}},
		{name: "defaults", plain: base(), prot: map[string]string{"gateway.auth.token": token},
			check: func(t *testing.T, s *Settings) {
				if s.String("service.type") != "ClusterIP" || s.Int("service.http.port") != 8080 || !s.Bool("telemetry.metrics.cloud") ||
					s.Duration("monitoring.uploadInterval") != time.Minute || s.Float("telemetry.metrics.localStatsd.sampling") != 1 ||
					s.String("gateway.auth.tokenAudience") != "https://azure-api.net/configuration" || s.Int("replicaCount") != 3 ||
					s.Source("service.type") != FromDefault || s.String("probes.readiness.httpGet.port") != "http" {
					t.Errorf("defaults wrong: %v", s)
				}
			}},
		{name: "conversion", plain: with(base(), "service.type", "NodePort", "service.http.nodePort", "30080", "gateway.configuration.backup.enabled", "TRUE",
			"monitoring.uploadInterval", "5m", "service.annotations", "a.b/c: x\nd: 'y'\n", "nodeSelector", `{"kubernetes.io/os":"linux"}`,
			"tolerations", "- key: k\n  operator: Exists\n", "telemetry.metrics.localStatsd.sampling", "0.5", "probes.liveness.httpGet.port", "8080",
			"highAvailability.disruption.maximumUnavailable", "1"),
			prot: map[string]string{"gateway.auth.token": token + "\n"},
			check: func(t *testing.T, s *Settings) {
				if s.Int("service.http.nodePort") != 30080 || !s.Bool("gateway.configuration.backup.enabled") || s.Duration("monitoring.uploadInterval") != 5*time.Minute ||
					s.StringMap("service.annotations")["a.b/c"] != "x" || s.StringMap("nodeSelector")["kubernetes.io/os"] != "linux" ||
					len(s.List("tolerations")) != 1 || s.Float("telemetry.metrics.localStatsd.sampling") != 0.5 || s.String("probes.liveness.httpGet.port") != "8080" {
					t.Errorf("conversion wrong: %v", s)
				}
				if s.Secret("gateway.auth.token").Reveal() != token || s.String("gateway.auth.token") != "" || s.Source("gateway.auth.token") != FromProtected {
					t.Error("secret")
				}
			}},
		{name: "unknown key with suggestion", plain: with(base(), "service.tpye", "NodePort"), prot: map[string]string{"gateway.auth.token": token},
			warnKey: "service.tpye", warn: `did you mean "service.type"?`},
		{name: "unknown key without suggestion", plain: with(base(), "zzz", "1"), prot: map[string]string{"gateway.auth.token": token},
			warnKey: "zzz", warn: "unknown setting"},
		{name: "helm alias", plain: with(base(), "observability.logs.std.format", "json", "service.ports.http", "9090"), prot: map[string]string{"gateway.auth.key": token},
			warnKey: "gateway.auth.token", warn: `"gateway.auth.key" is the Helm chart's spelling`,
			check: func(t *testing.T, s *Settings) {
				if s.String("telemetry.logs.std") != "json" || s.Int("service.http.port") != 9090 || s.Secret("gateway.auth.token").Reveal() != token {
					t.Errorf("aliases not applied: %v", s)
				}
			}},
		{name: "arc injected keys", plain: with(base(), "Azure.Cluster.Region", "westeurope"), prot: map[string]string{"gateway.auth.token": token, "Azure.proxySettings.httpsProxy": "http://u:p@proxy"},
			check: func(t *testing.T, s *Settings) {
				if s.String("Azure.Cluster.Region") != "westeurope" || s.Secret("Azure.proxySettings.httpsProxy").Reveal() == "" {
					t.Error("Azure.* not kept")
				}
			}},
		{name: "azure ad app", plain: with(base(), "gateway.auth.type", "AzureAdApp", "gateway.name", "gw", "gateway.auth.azureAd.tenant.id", "t", "gateway.auth.azureAd.app.id", "a"),
			prot: map[string]string{"gateway.auth.azureAd.app.certificate": "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, issues := load(t, tc.plain, tc.prot)
			if HasErrors(issues) {
				t.Fatalf("unexpected errors: %v", Errors(issues))
			}
			if tc.warnKey != "" {
				w := find(issues, Warning, tc.warnKey)
				if w == nil || !strings.Contains(w.Message, tc.warn) {
					t.Errorf("want warning on %s containing %q, got %v", tc.warnKey, tc.warn, issues)
				}
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	s, issues := load(t, base(), map[string]string{"gateway.auth.token": token, "cache.external.connectionString": secret,
		"monitoring.ingestionKey": secret, "monitoring.workspaceId": "ws"})
	if HasErrors(issues) {
		t.Fatal(Errors(issues))
	}
	sec := s.Secret("cache.external.connectionString")
	type holder struct {
		Name string
		sec  Secret
		S    Secret
	}
	h := holder{"x", sec, sec}
	js, _ := json.Marshal(s)
	jsSec, _ := json.Marshal(h)
	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%+v": fmt.Sprintf("%+v", s), "%#v": fmt.Sprintf("%#v", s), "%s": fmt.Sprintf("%s", s),
		"secret %v": fmt.Sprintf("%v", sec), "secret %#v": fmt.Sprintf("%#v", sec), "secret %q": fmt.Sprintf("%q", sec), "secret %x": fmt.Sprintf("%x", sec),
		"holder %+v": fmt.Sprintf("%+v", h), "holder %#v": fmt.Sprintf("%#v", h), "json": string(js), "json holder": string(jsSec),
		"error": fmt.Errorf("connect with %v: %w", sec, errors.New("boom")).Error(),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(out, secret) || strings.Contains(out, "c2VjcmV0") {
				t.Errorf("leak: %s", out)
			}
		})
	}
	if !strings.Contains(string(js), Redacted) || sec.Reveal() != secret {
		t.Error("redaction marker or Reveal wrong")
	}
}

func TestDiffLiveRestart(t *testing.T) {
	t.Parallel()
	sch := testSchema(t)
	a, _ := LoadMap(with(base(), "telemetry.logs.level", "info"), map[string]string{"gateway.auth.token": token}, sch)
	b, _ := LoadMap(with(base(), "telemetry.logs.level", "debug", "service.type", "NodePort"), map[string]string{"gateway.auth.token": token + "x"}, sch)
	ch := b.Diff(a)
	want := Change{Keys: []string{"gateway.auth.token", "service.type", "telemetry.logs.level"},
		Live: []string{"gateway.auth.token", "telemetry.logs.level"}, Restart: []string{"service.type"}}
	if fmt.Sprint(ch) != fmt.Sprint(want) {
		t.Errorf("diff = %+v, want %+v", ch, want)
	}
	if !a.Diff(a).Empty() {
		t.Error("self diff not empty")
	}
}

func TestParseSchemaErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, doc string }{
		{name: "not json", doc: "{"},
		{name: "protected non-string", doc: `{"properties":{"a":{"type":"integer","x-protected":true}}}`},
		{name: "no type", doc: `{"properties":{"a":{}}}`},
		{name: "alias clash", doc: `{"properties":{"a":{"type":"string","x-aliases":["b"]},"b":{"type":"string"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseSchema([]byte(tc.doc)); err == nil {
				t.Error("want error")
			}
		})
	}
}

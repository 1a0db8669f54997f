package portal

import (
	"maps"
	"strings"
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
	"github.com/seed393f6fe3/apim-arc-gateway/scripts/release-train/manifest"
)

// samples are values a user would type; the secrets are distinctive so the
// check can trace where they end up.
var samples = map[string]any{
	"clusterResourceName": "arc-cluster-1",
	"configurationUri":    "https://contoso.configuration.azure-api.net",
	"gatewayToken":        "GatewayKey gw1&203001010000&c2VjcmV0LXNpZ25hdHVyZQ==",
	"version":             "0.1.0",
	"workspaceId":         "6f4d9d1e-0b6f-4f3a-9d7e-1a2b3c4d5e6f",
	"ingestionKey":        "aW5nZXN0aW9uLWtleS1zZWNyZXQ=",
}

func options(t *testing.T) (*settings.Schema, Options) {
	t.Helper()
	schema, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Read("../../extension-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{ExtensionType: m.ExtensionType, Samples: samples}
	for _, tr := range m.ReleaseTrains {
		if !tr.Hidden {
			o.Trains = append(o.Trains, tr.Name)
		}
	}
	if m.Portal.CreateUIDefinition != "schemas/portal/createUiDefinition.json" || m.Portal.Template != "schemas/portal/mainTemplate.json" {
		t.Errorf("the manifest points at %+v, not at this package's files", m.Portal)
	}
	return schema, o
}

func TestPortalFiles(t *testing.T) {
	schema, o := options(t)
	if errs := Check(CreateUIDefinition, MainTemplate, schema, o); len(errs) > 0 {
		for _, e := range errs {
			t.Error(e)
		}
	}
}

// Each mutation breaks one promise the portal makes; the check must say
// which.
func TestPortalCheckCatches(t *testing.T) {
	schema, o := options(t)
	tests := []struct {
		name     string
		ui       [2]string // old, new in createUiDefinition.json
		template [2]string // old, new in mainTemplate.json
		samples  map[string]any
		want     []string // suffixes of reported problems
	}{
		{
			name:     "token as a plain setting",
			template: [2]string{`"service.type": "[parameters('serviceType')]"`, `"service.type": "[parameters('serviceType')]", "gateway.auth.token": "[parameters('gatewayToken')]"`},
			want: []string{
				"configurationSettings: gateway.auth.token is protected and must go to configurationProtectedSettings",
				"secure parameter gatewayToken reaches properties.configurationSettings.gateway.auth.token",
			},
		},
		{
			name:     "alias of a protected key as a plain setting",
			template: [2]string{`"service.type": "[parameters('serviceType')]"`, `"service.type": "[parameters('serviceType')]", "gateway.auth.key": "x"`},
			want:     []string{"configurationSettings: gateway.auth.key is protected and must go to configurationProtectedSettings"},
		},
		{
			name:     "key the schema does not know",
			template: [2]string{`"service.type": "[parameters('serviceType')]"`, `"service.kind": "[parameters('serviceType')]"`},
			want:     []string{"configurationSettings: service.kind is not a setting of the settings schema"},
		},
		{
			name:     "secret under a plain key in protected settings",
			template: [2]string{`'monitoring.ingestionKey', parameters('ingestionKey')`, `'monitoring.workspaceId', parameters('ingestionKey')`},
			want: []string{
				"configurationProtectedSettings: monitoring.workspaceId is not x-protected in the settings schema",
			},
		},
		{
			name:     "secret dropped",
			template: [2]string{`'monitoring.ingestionKey', parameters('ingestionKey')`, `'monitoring.customResourceId', 'x'`},
			want:     []string{"secure parameter ingestionKey never reaches configurationProtectedSettings"},
		},
		{
			name:     "password box into a plain parameter",
			template: [2]string{"\"gatewayToken\": {\n      \"type\": \"securestring\"", "\"gatewayToken\": {\n      \"type\": \"string\""},
			want:     []string{"output gatewayToken comes from a Microsoft.Common.PasswordBox and needs a securestring parameter, but mainTemplate.json declares string"},
		},
		{
			name: "output missing",
			ui:   [2]string{",\n      \"ingestionKey\": \"[steps('monitoring').ingestionKey]\"", ""},
			want: []string{
				"mainTemplate.json parameter ingestionKey is not set by an output of createUiDefinition.json",
				"createUiDefinition.json: the password box steps('monitoring').ingestionKey reaches no output",
			},
		},
		{
			name: "output without a parameter",
			ui:   [2]string{`"version": "[basics('version')]"`, `"version": "[basics('version')]", "pinnedVersion": "[basics('version')]"`},
			want: []string{"output pinnedVersion feeds no parameter of mainTemplate.json"},
		},
		{
			name: "output naming no control",
			ui:   [2]string{`"[steps('gateway').replicas]"`, `"[steps('gateway').replica]"`},
			want: []string{"createUiDefinition.json: output replicaCount: steps('gateway').replica is not a control"},
		},
		{
			name: "drop-down offers what the template refuses",
			ui:   [2]string{`{ "label": "LoadBalancer", "value": "LoadBalancer" }`, `{ "label": "LoadBalancer", "value": "Loadbalancer" }`},
			want: []string{"output serviceType offers [ClusterIP Loadbalancer NodePort] but mainTemplate.json allows [ClusterIP LoadBalancer NodePort]"},
		},
		{
			name:     "pinned version with auto-upgrade",
			template: [2]string{`"[if(parameters('autoUpgradeMinorVersion'), null(), parameters('version'))]"`, `"[parameters('version')]"`},
			want:     []string{`version "0.1.0" is set together with autoUpgradeMinorVersion true (Arc rejects that)`},
		},
		{
			name:     "wrong extension type",
			template: [2]string{`"extensionType": "Microsoft.ApiManagement.Gateway"`, `"extensionType": "Microsoft.ApiManagement.Gateways"`},
			want:     []string{"extensionType is Microsoft.ApiManagement.Gateways, want Microsoft.ApiManagement.Gateway"},
		},
		{
			name:     "function the check cannot evaluate",
			template: [2]string{`"[string(parameters('replicaCount'))]"`, `"[toLower(parameters('replicaCount'))]"`},
			want:     []string{"function toLower is not supported by the portal check"},
		},
		{
			name:    "hidden train",
			samples: map[string]any{"releaseTrain": "dev"},
			want:    []string{`releaseTrain "dev" is not a public train (stable, preview)`},
		},
		{
			name:    "values the schema refuses",
			samples: map[string]any{"configurationUri": "ftp://contoso"},
			want:    []string{`the settings do not validate: error: gateway.configuration.uri: "ftp://contoso" does not match ^(https?|file)://\S+$`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ui, tpl := string(CreateUIDefinition), string(MainTemplate)
			if tt.ui[0] != "" {
				if !strings.Contains(ui, tt.ui[0]) {
					t.Fatalf("createUiDefinition.json has no %q", tt.ui[0])
				}
				ui = strings.Replace(ui, tt.ui[0], tt.ui[1], 1)
			}
			if tt.template[0] != "" {
				if !strings.Contains(tpl, tt.template[0]) {
					t.Fatalf("mainTemplate.json has no %q", tt.template[0])
				}
				tpl = strings.Replace(tpl, tt.template[0], tt.template[1], 1)
			}
			opts := o
			opts.Samples = maps.Clone(samples)
			maps.Copy(opts.Samples, tt.samples)
			errs := Check([]byte(ui), []byte(tpl), schema, opts)
			for _, want := range tt.want {
				found := false
				for _, e := range errs {
					found = found || strings.HasSuffix(e.Error(), want)
				}
				if !found {
					t.Errorf("no problem ending in %q; got %v", want, errs)
				}
			}
			// Problems name keys and parameters, never secret values.
			for _, e := range errs {
				for _, s := range []string{samples["gatewayToken"].(string), samples["ingestionKey"].(string)} {
					if strings.Contains(e.Error(), s) {
						t.Errorf("problem leaks a secret: %v", e)
					}
				}
			}
		})
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	specs := append(append(commonSpecs(), settingSpecs()...), createSpecs()...)
	tests := []struct {
		name     string
		in       []string
		settings []string
		ns       string
		wantErr  string
	}{
		{name: "az style lists and repeats", in: []string{"--configuration-settings", "a=1", "b=2", "--config", "c=3", "-n", "gw", "--target-namespace", "apim"},
			settings: []string{"a=1", "b=2", "c=3"}, ns: "apim"},
		{name: "inline values", in: []string{"--name=gw", "--configuration-settings=a=1", "b=2", "--target-namespace=apim"},
			settings: []string{"a=1", "b=2"}, ns: "apim"},
		{name: "unknown flag", in: []string{"--configuration-setting", "a=1"}, wantErr: "unknown flag --configuration-setting"},
		{name: "missing value", in: []string{"--name"}, wantErr: "--name needs a value"},
		{name: "empty list", in: []string{"--config-protected-settings", "--name", "gw"}, wantErr: "--config-protected-settings needs at least one key=value"},
		{name: "stray word", in: []string{"gw"}, wantErr: `unexpected argument "gw"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseArgs(specs, tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.all("--configuration-settings"), tt.settings) || a.get("--name") != "gw" || a.get("--target-namespace") != tt.ns {
				t.Errorf("settings %v name %q ns %q", a.all("--configuration-settings"), a.get("--name"), a.get("--target-namespace"))
			}
		})
	}
}

const token = "GatewayKey gw1&203001010000&c2VjcmV0LXNpZ25hdHVyZQ=="

// cli runs the emulator with the repository's manifest and a private state
// file, against a kubeconfig that does not exist (no cluster is reached).
func cli(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	common := []string{"--manifest", "../../extension-manifest.yaml", "--charts", filepath.Join(dir, "charts"),
		"--state", filepath.Join(dir, "state.json"), "-g", "rg1", "-c", "arc1", "-t", "connectedClusters"}
	var out, errb bytes.Buffer
	code = run(context.Background(), append(append([]string{args[0]}, common...), args[1:]...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "missing-kubeconfig")
	settingsFile := filepath.Join(dir, "settings.json")
	if err := os.WriteFile(settingsFile, []byte(`{"gateway.configuration.uri": "https://contoso.configuration.azure-api.net", "replicaCount": 2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	noSecret := func(what, text string) {
		t.Helper()
		if strings.Contains(text, "c2VjcmV0LXNpZ25hdHVyZQ") {
			t.Errorf("%s shows the token:\n%s", what, text)
		}
	}

	// Refused before anything happens, naming the key, never the value.
	code, _, stderr := cli(t, dir, "create", "-n", "gw", "--extension-type", "Microsoft.ApiManagement.Gateway",
		"--target-namespace", "apim", "--configuration-settings", "gateway.auth.token="+token)
	if code != 1 || !strings.Contains(stderr, "configuration setting gateway.auth.token is protected: pass it with --config-protected-settings") {
		t.Errorf("token as a plain setting: code %d, %s", code, stderr)
	}
	noSecret("the refusal", stderr)
	code, _, stderr = cli(t, dir, "create", "-n", "gw", "--extension-type", "Microsoft.ApiManagement.Gateway", "--target-namespace", "apim",
		"--configuration-settings", "a=b", "--configuration-settings-file", settingsFile)
	if code != 1 || !strings.Contains(stderr, "--configuration-settings and --configuration-settings-file are mutually exclusive") {
		t.Errorf("both settings forms: code %d, %s", code, stderr)
	}
	code, _, stderr = cli(t, dir, "create", "-n", "gw", "--extension-type", "Microsoft.ApiManagement.Gateway", "--target-namespace", "apim",
		"--config-protected-settings", token)
	if code != 1 || !strings.Contains(stderr, "--config-protected-settings: item 1: the key is not a dotted setting name") {
		t.Errorf("protected word without '=': code %d, %s", code, stderr)
	}
	noSecret("the refusal", stderr)
	code, _, stderr = cli(t, dir, "create", "-n", "gw", "--extension-type", "Microsoft.ApiManagement.Gateway", "--target-namespace", "apim",
		"--config-protected-settings", "c2VjcmV0LXNpZ25hdHVyZQ")
	if code != 1 || !strings.Contains(stderr, "--config-protected-settings: item 1 is not key=value") {
		t.Errorf("protected word without '=': code %d, %s", code, stderr)
	}
	noSecret("the refusal", stderr)

	// Accepted, recorded, then the install fails (no cluster): the instance
	// is kept as Failed, like Arc, and show prints it without the token.
	code, stdout, stderr := cli(t, dir, "create", "-n", "gw", "--extension-type", "Microsoft.ApiManagement.Gateway",
		"--target-namespace", "apim", "--release-train", "preview", "--kubeconfig", kubeconfig,
		"--configuration-settings-file", settingsFile, "--config-protected-settings", "gateway.auth.token="+token)
	if code != 1 {
		t.Errorf("create without a cluster: code %d", code)
	}
	noSecret("create", stdout+stderr)
	code, stdout, _ = cli(t, dir, "show", "-n", "gw")
	if code != 0 {
		t.Fatalf("show: code %d", code)
	}
	noSecret("show", stdout)
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	settings, _ := res["configurationSettings"].(map[string]any)
	if res["provisioningState"] != "Failed" || res["currentVersion"] != "0.1.0" || res["releaseTrain"] != "preview" ||
		settings["replicaCount"] != "2" {
		t.Errorf("show = %s", stdout)
	}
	code, stdout, _ = cli(t, dir, "list")
	if code != 0 || !strings.Contains(stdout, `"name": "gw"`) {
		t.Errorf("list: code %d\n%s", code, stdout)
	}
	state, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	noSecret("the state file", string(state))

	code, _, stderr = cli(t, dir, "update", "-n", "gw", "--version", "0.1.0")
	if code != 1 || !strings.Contains(stderr, "to pin to specific version, auto-upgrade-minor-version must be set to 'false'") {
		t.Errorf("update pin with auto-upgrade: code %d, %s", code, stderr)
	}
	code, _, stderr = cli(t, dir, "show", "-n", "nope")
	if code != 1 || !strings.Contains(stderr, "extension not found: nope on cluster arc1 (resource group rg1)") {
		t.Errorf("show unknown: code %d, %s", code, stderr)
	}
}

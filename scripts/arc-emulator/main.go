// Command arc-emulator does what Azure Arc's extension manager does for the
// Microsoft.ApiManagement.Gateway extension type, with the flags of
// `az k8s-extension`: create, update, show, delete and list extension
// instances, resolve versions from extension-manifest.yaml, turn settings
// into Helm values with the Azure.* values injected, and install the chart
// with the Helm SDK. `reconcile` runs the auto-upgrade pass Arc runs on its
// own. See docs/release.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
	"github.com/seed393f6fe3/apim-arc-gateway/scripts/arc-emulator/extmanager"
	"github.com/seed393f6fe3/apim-arc-gateway/scripts/release-train/manifest"
)

const usage = `usage: arc-emulator <create|update|show|delete|list|reconcile> [flags]

Flags mirror az k8s-extension (run a command with --help for its flags).
Emulator flags: --manifest (extension-manifest.yaml), --charts (dist/charts),
--state (.arc-emulator/state.json, or $ARC_EMULATOR_STATE), --kubeconfig,
--kube-context, --helm-atomic true|false, --helm-timeout 10m, --debug.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func commonSpecs() []argSpec {
	return []argSpec{
		{names: []string{"--name", "-n"}, help: "extension instance name"},
		{names: []string{"--cluster-name", "-c"}, help: "cluster name"},
		{names: []string{"--resource-group", "-g"}, help: "resource group"},
		{names: []string{"--cluster-type", "-t"}, help: "connectedClusters, managedClusters, appliances or provisionedClusters"},
		{names: []string{"--subscription"}, def: "00000000-0000-0000-0000-000000000000", help: "subscription id used in resource ids"},
		{names: []string{"--manifest"}, def: envOr("ARC_EMULATOR_MANIFEST", "extension-manifest.yaml"), help: "extension manifest"},
		{names: []string{"--charts"}, def: envOr("ARC_EMULATOR_CHARTS", "dist/charts"), help: "folder of packaged charts"},
		{names: []string{"--state"}, def: envOr("ARC_EMULATOR_STATE", filepath.Join(".arc-emulator", "state.json")), help: "state file"},
		{names: []string{"--kubeconfig"}, help: "kubeconfig (default: the one the extension was created with, else $KUBECONFIG)"},
		{names: []string{"--kube-context"}, help: "kubeconfig context"},
		{names: []string{"--helm-atomic"}, def: "true", help: "roll back a failed install or upgrade and wait for readiness, as Arc does"},
		{names: []string{"--helm-timeout"}, def: "10m", help: "Helm operation timeout"},
		{names: []string{"--debug"}, kind: noValue, help: "print Helm's debug log to stderr"},
		{names: []string{"--yes", "-y"}, kind: noValue, help: "accepted for az compatibility"},
		{names: []string{"--no-wait"}, kind: noValue, help: "accepted for az compatibility; the emulator always waits"},
		{names: []string{"--help", "-h"}, kind: noValue},
	}
}

func settingSpecs() []argSpec {
	return []argSpec{
		{names: []string{"--release-train"}, help: "release train (default Stable)"},
		{names: []string{"--version"}, help: "version to pin (needs --auto-upgrade-minor-version false)"},
		{names: []string{"--auto-upgrade-minor-version", "--auto-upgrade"}, help: "true or false (default true)"},
		{names: []string{"--configuration-settings", "--config"}, kind: manyValue, help: "key=value ..."},
		{names: []string{"--configuration-settings-file", "--config-settings-file"}, help: "JSON file of settings"},
		{names: []string{"--config-protected-settings", "--config-protected", "--configuration-protected-settings"}, kind: manyValue, help: "key=value ... (secrets)"},
		{names: []string{"--config-protected-settings-file", "--config-protected-file", "--configuration-protected-settings-file"}, help: "JSON file of protected settings"},
	}
}

func createSpecs() []argSpec {
	return []argSpec{
		{names: []string{"--extension-type"}, help: "extension type"},
		{names: []string{"--scope"}, help: "cluster or namespace (default: the manifest's)"},
		{names: []string{"--release-namespace"}, help: "namespace of a cluster-scoped instance"},
		{names: []string{"--target-namespace"}, help: "namespace of a namespace-scoped instance"},
		{names: []string{"--cluster-location"}, def: "eastus", help: "injected as Azure.Cluster.Region"},
		{names: []string{"--cluster-distribution"}, def: "generic", help: "injected as Azure.Cluster.Distribution"},
		{names: []string{"--cluster-infrastructure"}, def: "generic", help: "injected as Azure.Cluster.Infrastructure"},
		{names: []string{"--cluster-cloud"}, def: "AzureCloud", help: "injected as Azure.Cluster.Cloud"},
		{names: []string{"--proxy-http"}, help: "cluster HTTP proxy (Azure.proxySettings.httpProxy)"},
		{names: []string{"--proxy-https"}, help: "cluster HTTPS proxy (Azure.proxySettings.httpsProxy)"},
		{names: []string{"--proxy-skip-range"}, help: "no-proxy list (Azure.proxySettings.noProxy)"},
		{names: []string{"--proxy-cert"}, help: "PEM file of the proxy's CA (Azure.proxySettings.proxyCert)"},
	}
}

func run(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	if len(argv) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := argv[0]
	specs := commonSpecs()
	switch cmd {
	case "create":
		specs = append(append(specs, settingSpecs()...), createSpecs()...)
	case "update":
		specs = append(specs, settingSpecs()...)
	case "delete":
		specs = append(specs, argSpec{names: []string{"--force"}, kind: noValue, help: "accepted for az compatibility"})
	case "show", "list", "reconcile":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "arc-emulator: unknown command %q\n%s", cmd, usage)
		return 2
	}
	a, err := parseArgs(specs, argv[1:])
	if err != nil {
		fmt.Fprintf(stderr, "arc-emulator %s: %v\n", cmd, err)
		return 2
	}
	if a.isSet("--help") {
		printHelp(stdout, cmd, specs)
		return 0
	}
	if err := dispatch(ctx, cmd, a, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "arc-emulator %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func printHelp(w io.Writer, cmd string, specs []argSpec) {
	fmt.Fprintf(w, "arc-emulator %s flags:\n", cmd)
	for _, s := range specs {
		if s.help == "" {
			continue
		}
		def := ""
		if s.def != "" {
			def = " (default " + s.def + ")"
		}
		fmt.Fprintf(w, "  %-40s %s%s\n", strings.Join(s.names, ", "), s.help, def)
	}
}

func manager(a *args, stderr io.Writer) (*extmanager.Manager, error) {
	m, err := manifest.Read(a.get("--manifest"))
	if err != nil {
		return nil, err
	}
	// The schema the manifest names, else the one built in.
	schemaData := schemas.ExtensionSettings
	if data, err := os.ReadFile(filepath.Join(filepath.Dir(a.get("--manifest")), m.Settings.Schema)); err == nil {
		schemaData = data
	}
	schema, err := settings.ParseSchema(schemaData)
	if err != nil {
		return nil, err
	}
	atomic, err := a.boolValue("--helm-atomic")
	if err != nil {
		return nil, err
	}
	timeout, err := time.ParseDuration(a.get("--helm-timeout"))
	if err != nil {
		return nil, fmt.Errorf("--helm-timeout: %w", err)
	}
	k := extmanager.Kube{Kubeconfig: a.get("--kubeconfig"), Context: a.get("--kube-context"),
		Atomic: atomic == nil || *atomic, Timeout: timeout}
	if a.isSet("--debug") {
		k.Debug = stderr
	}
	return &extmanager.Manager{
		Catalog:   &extmanager.Catalog{Manifest: m, Schema: schema},
		Store:     extmanager.Store{Path: a.get("--state")},
		ChartsDir: a.get("--charts"),
		Kube:      k,
	}, nil
}

func ref(a *args) extmanager.Ref {
	return extmanager.Ref{
		Subscription: a.get("--subscription"), ResourceGroup: a.get("--resource-group"),
		ClusterType: a.get("--cluster-type"), ClusterName: a.get("--cluster-name"), Name: a.get("--name"),
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dispatch(ctx context.Context, cmd string, a *args, stdout, stderr io.Writer) error {
	mgr, err := manager(a, stderr)
	if err != nil {
		return err
	}
	r := ref(a)
	switch cmd {
	case "create":
		req, err := createRequest(a, r)
		if err != nil {
			return err
		}
		e, err := mgr.Create(ctx, req)
		if e != nil {
			_ = printJSON(stdout, e.Resource())
		}
		return err
	case "update":
		req, err := updateRequest(a, r)
		if err != nil {
			return err
		}
		e, deleted, err := mgr.Update(ctx, req)
		if len(deleted) > 0 {
			fmt.Fprintf(stderr, "WARNING: protected settings not sent again were deleted: %s\n", strings.Join(deleted, ", "))
		}
		if e != nil {
			_ = printJSON(stdout, e.Resource())
		}
		return err
	case "show":
		e, err := mgr.Show(r)
		if err != nil {
			return err
		}
		return printJSON(stdout, e.Resource())
	case "list":
		if r.ClusterName == "" || r.ResourceGroup == "" || r.ClusterType == "" {
			return errors.New("required: --cluster-name, --resource-group, --cluster-type")
		}
		es, err := mgr.List(r)
		if err != nil {
			return err
		}
		out := []any{}
		for _, e := range es {
			out = append(out, e.Resource())
		}
		return printJSON(stdout, out)
	case "delete":
		return mgr.Delete(ctx, r)
	case "reconcile":
		done, err := mgr.Reconcile(ctx, r)
		for _, d := range done {
			fmt.Fprintf(stdout, "auto-upgraded %s\n", d)
		}
		return err
	}
	return nil
}

func createRequest(a *args, r extmanager.Ref) (extmanager.CreateRequest, error) {
	req := extmanager.CreateRequest{
		Ref: r, ExtensionType: a.get("--extension-type"), Scope: a.get("--scope"),
		ReleaseNamespace: a.get("--release-namespace"), TargetNamespace: a.get("--target-namespace"),
		ReleaseTrain: a.get("--release-train"), Version: a.get("--version"),
		Cluster: extmanager.Cluster{
			Region: a.get("--cluster-location"), Distribution: a.get("--cluster-distribution"),
			Infrastructure: a.get("--cluster-infrastructure"), Cloud: a.get("--cluster-cloud"),
		},
		Proxy: extmanager.Proxy{HTTPProxy: a.get("--proxy-http"), HTTPSProxy: a.get("--proxy-https"), NoProxy: a.get("--proxy-skip-range")},
	}
	kc := a.get("--kubeconfig")
	if kc == "" {
		kc = extmanager.DefaultKubeconfig()
	}
	abs, err := filepath.Abs(kc)
	if err != nil {
		return req, err
	}
	req.Cluster.Kubeconfig = abs
	if p := a.get("--proxy-cert"); p != "" {
		pem, err := os.ReadFile(p)
		if err != nil {
			return req, fmt.Errorf("--proxy-cert: %w", err)
		}
		req.Proxy.Cert = string(pem)
	}
	if req.AutoUpgrade, err = a.boolValue("--auto-upgrade-minor-version"); err != nil {
		return req, err
	}
	if req.Settings, err = settingsFrom(a, "--configuration-settings", "--configuration-settings-file"); err != nil {
		return req, err
	}
	if req.Protected, err = settingsFrom(a, "--config-protected-settings", "--config-protected-settings-file"); err != nil {
		return req, err
	}
	return req, nil
}

func updateRequest(a *args, r extmanager.Ref) (extmanager.UpdateRequest, error) {
	req := extmanager.UpdateRequest{Ref: r, ReleaseTrain: a.get("--release-train"), Version: a.get("--version")}
	var err error
	if req.AutoUpgrade, err = a.boolValue("--auto-upgrade-minor-version"); err != nil {
		return req, err
	}
	if req.Settings, err = settingsFrom(a, "--configuration-settings", "--configuration-settings-file"); err != nil {
		return req, err
	}
	if req.Protected, err = settingsFrom(a, "--config-protected-settings", "--config-protected-settings-file"); err != nil {
		return req, err
	}
	return req, nil
}

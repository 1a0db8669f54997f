// Command release-train edits and checks extension-manifest.yaml: it adds a
// version to a release train, promotes a version from preview to stable,
// packages the chart, and checks that everything the trains list is
// releasable. See docs/release.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/scripts/release-train/manifest"
)

const usage = `usage: release-train <command> [flags]

commands:
  add      --train T --version X --chart-version Y --app-version Z --min-k8s 1.28 [--auto-upgrade-target=false]
  promote  --from preview --to stable --version X
  package  [--ref GIT-REF] [--version X --app-version Z] [--out dist/charts]
  check    [--charts dist/charts] [--base previous-manifest.yaml]

every command takes --manifest (default extension-manifest.yaml)
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "add":
		err = cmdAdd(args[1:], stdout, stderr)
	case "promote":
		err = cmdPromote(args[1:], stdout, stderr)
	case "package":
		err = cmdPackage(ctx, args[1:], stdout, stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "release-train: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "release-train %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.String("manifest", "extension-manifest.yaml", "extension manifest to read and edit")
}

func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return fmt.Errorf("--%s is required", n)
		}
	}
	return nil
}

func cmdAdd(args []string, stdout, stderr io.Writer) error {
	fs, path := newFlags("add", stderr)
	train := fs.String("train", "", "release train to add the version to")
	version := fs.String("version", "", "extension version")
	chartVersion := fs.String("chart-version", "", "chart version (default: --version)")
	appVersion := fs.String("app-version", "", "app version the chart deploys")
	minK8s := fs.String("min-k8s", "", "minimum Kubernetes version, e.g. 1.28")
	target := fs.Bool("auto-upgrade-target", true, "auto-upgrading extensions may move to this version")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "train", "version", "app-version", "min-k8s"); err != nil {
		return err
	}
	if *chartVersion == "" {
		*chartVersion = *version
	}
	return edit(*path, stdout, func(data []byte) ([]byte, error) {
		return manifest.Add(data, *train, manifest.Version{
			Version: *version, ChartVersion: *chartVersion, AppVersion: *appVersion,
			MinKubernetesVersion: *minK8s, AutoUpgradeTarget: target,
		})
	}, fmt.Sprintf("added %s to %s", *version, *train))
}

func cmdPromote(args []string, stdout, stderr io.Writer) error {
	fs, path := newFlags("promote", stderr)
	from := fs.String("from", "preview", "train the version is on")
	to := fs.String("to", "stable", "train to promote it to")
	version := fs.String("version", "", "version to promote")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := required(fs, "from", "to", "version"); err != nil {
		return err
	}
	return edit(*path, stdout, func(data []byte) ([]byte, error) {
		return manifest.Promote(data, *from, *to, *version)
	}, fmt.Sprintf("promoted %s from %s to %s", *version, *from, *to))
}

func edit(path string, stdout io.Writer, change func([]byte) ([]byte, error), done string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := change(data)
	if err != nil {
		return err
	}
	// Write next to the file and rename, so a crash never leaves half a
	// manifest behind.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", path, done)
	return nil
}

func cmdPackage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, path := newFlags("package", stderr)
	out := fs.String("out", "dist/charts", "folder for packaged charts")
	ref := fs.String("ref", "", "package the chart as it was at this git ref instead of the working tree")
	version := fs.String("version", "", "override the chart version (helm package --version)")
	appVersion := fs.String("app-version", "", "override the app version (helm package --app-version)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := manifest.Read(*path)
	if err != nil {
		return err
	}
	root := filepath.Dir(*path)
	chartDir := filepath.Join(root, m.Chart.Path)
	if *ref != "" {
		tmp, err := os.MkdirTemp("", "release-train-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if chartDir, err = manifest.ExtractAtRef(ctx, root, *ref, m.Chart.Path, tmp); err != nil {
			return err
		}
	}
	p, err := manifest.Package(chartDir, *out, manifest.PackageOptions{Version: *version, AppVersion: *appVersion})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "packaged %s\n", p)
	return nil
}

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs, path := newFlags("check", stderr)
	charts := fs.String("charts", "dist/charts", "folder of packaged charts; empty skips the package check")
	base := fs.String("base", "", "previously released manifest; versions must only move forward from it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := manifest.Read(*path)
	if err != nil {
		return err
	}
	root := filepath.Dir(*path)
	o := manifest.CheckOptions{Root: root, ChartsDir: *charts}
	if m.Settings.Schema != "" {
		data, err := os.ReadFile(filepath.Join(root, m.Settings.Schema))
		if err != nil {
			return fmt.Errorf("settings.schema: %w", err)
		}
		if o.Schema, err = settings.ParseSchema(data); err != nil {
			return err
		}
	}
	if *base != "" {
		if o.Base, err = manifest.Read(*base); err != nil {
			return fmt.Errorf("--base: %w", err)
		}
	}
	problems := m.Check(o)
	for _, p := range problems {
		fmt.Fprintf(stderr, "%s: %v\n", *path, p)
	}
	if len(problems) > 0 {
		return errors.New(strconv.Itoa(len(problems)) + " problem(s)")
	}
	versions := 0
	for _, t := range m.ReleaseTrains {
		versions += len(t.Versions)
	}
	fmt.Fprintf(stdout, "%s: ok (%d trains, %d versions)\n", *path, len(m.ReleaseTrains), versions)
	return nil
}

// Command gen-values-schema writes the Helm chart's values.schema.json and
// the settings catalog its templates use, both derived from
// schemas/extension-settings.schema.json (the single source of the Arc
// settings) and chart-values.schema.json (chart-only values and the keys Arc
// injects). `make generate` runs it; `make check-generated` runs it with
// -check, which fails when a committed file differs from what it would write.
//
//	gen-values-schema [-settings FILE] [-chart-values FILE] [-chart DIR] [-check]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen-values-schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settingsPath := fs.String("settings", "schemas/extension-settings.schema.json", "settings schema (dotted Arc keys)")
	chartValuesPath := fs.String("chart-values", "scripts/gen-values-schema/chart-values.schema.json", "chart-only values and Arc-injected keys (dotted keys)")
	chartDir := fs.String("chart", "charts/apim-gateway", "chart folder to write into")
	check := fs.Bool("check", false, "write nothing; fail if a generated file is stale")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	files, err := generate(*settingsPath, *chartValuesPath)
	if err != nil {
		fmt.Fprintln(stderr, "gen-values-schema:", err)
		return 1
	}
	stale := 0
	for _, f := range files {
		path := filepath.Join(*chartDir, f.name)
		if *check {
			old, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(old, f.data) {
				fmt.Fprintf(stderr, "gen-values-schema: %s is stale; run `make generate`\n", path)
				stale++
			}
			continue
		}
		if err := os.WriteFile(path, f.data, 0o644); err != nil {
			fmt.Fprintln(stderr, "gen-values-schema:", err)
			return 1
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	if stale > 0 {
		return 1
	}
	return 0
}

// output is one generated file, relative to the chart folder.
type output struct {
	name string
	data []byte
}

// generate reads both schemas and returns the generated files.
func generate(settingsPath, chartValuesPath string) ([]output, error) {
	settings, err := readSchema(settingsPath)
	if err != nil {
		return nil, err
	}
	chartValues, err := readSchema(chartValuesPath)
	if err != nil {
		return nil, err
	}
	schema, err := valuesSchema(settings, chartValues)
	if err != nil {
		return nil, err
	}
	catalog, err := catalogTemplate(settings, chartValues)
	if err != nil {
		return nil, err
	}
	return []output{
		{name: "values.schema.json", data: schema},
		{name: filepath.Join("templates", "_catalog.tpl"), data: catalog},
	}, nil
}

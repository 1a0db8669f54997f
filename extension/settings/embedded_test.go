package settings_test

import (
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/extension/settings"
	"github.com/seed393f6fe3/apim-arc-gateway/schemas"
)

// The schema the binaries embed parses, and defines the settings every
// install needs.
func TestEmbeddedSchema(t *testing.T) {
	s, err := settings.ParseSchema(schemas.ExtensionSettings)
	if err != nil {
		t.Fatal(err)
	}
	_, issues := settings.LoadMap(map[string]string{"gateway.configuration.uri": "file:///apim/local"}, nil, s)
	if settings.HasErrors(issues) {
		t.Errorf("a local-source install is rejected: %v", issues)
	}
}

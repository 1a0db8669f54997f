// Package schemas gives the binaries the repository's JSON schemas, so
// the file in schemas/ stays the single source.
package schemas

import _ "embed"

// ExtensionSettings is extension-settings.schema.json: every Arc setting
// the extension accepts.
//
//go:embed extension-settings.schema.json
var ExtensionSettings []byte

// GatewayConfiguration is gateway-configuration.schema.json: the
// configuration snapshot.
//
//go:embed gateway-configuration.schema.json
var GatewayConfiguration []byte

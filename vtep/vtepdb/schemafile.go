package vtepdb

import _ "embed"

// SchemaJSON is the committed hardware_vtep schema file (vtep.ovsschema),
// byte for byte: what ovsdb-tool creates a switch database from.
//
//go:embed vtep.ovsschema
var SchemaJSON []byte

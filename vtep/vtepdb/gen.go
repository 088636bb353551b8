// Package vtepdb holds the hardware_vtep OVSDB schema (1.7.0, as shipped by
// Debian's openvswitch-vtep) and the typed models that libovsdb's modelgen
// generates from it. Do not edit the generated files: run `make generate`.
package vtepdb

//go:generate go tool modelgen -p vtepdb -o . vtep.ovsschema

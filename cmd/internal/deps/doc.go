// Package deps holds only the import-boundary test of the whole module
// (deps_test.go): one table of rules, one per package or tree of packages,
// checked against `go list`. A package no rule covers fails the test, so a
// new package comes with its rule.
package deps

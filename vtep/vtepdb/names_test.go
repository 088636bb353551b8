package vtepdb

import (
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"
)

// TestColumnNames checks every <model>Column<field> constant of names.go
// against the ovsdb tag of that field of the generated model, and the
// model's table against the schema: a misspelt or renamed column fails
// here, not on a switch.
func TestColumnNames(t *testing.T) {
	dbm, err := DatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	schema := dbm.Schema
	models := map[string]reflect.Type{} // struct name -> type
	tables := map[string]string{}       // struct name -> table
	for table, typ := range dbm.Types() {
		models[typ.Elem().Name()] = typ.Elem()
		tables[typ.Elem().Name()] = table
	}
	consts := parseConsts(t, "names.go")
	n := 0
	for name, value := range consts {
		model, field, ok := strings.Cut(name, "Column")
		if !ok || model == "" {
			continue
		}
		n++
		typ, ok := models[model]
		if !ok {
			t.Errorf("%s: no model %s", name, model)
			continue
		}
		f, ok := typ.FieldByName(field)
		if !ok {
			t.Errorf("%s: model %s has no field %s", name, model, field)
			continue
		}
		if tag := f.Tag.Get("ovsdb"); tag != value {
			t.Errorf("%s = %q, but %s.%s is column %q", name, value, model, field, tag)
		}
		if schema.Table(tables[model]).Column(value) == nil {
			t.Errorf("%s: table %s has no column %q", name, tables[model], value)
		}
	}
	if n == 0 {
		t.Fatal("no column constants found in names.go")
	}
	if consts["ColumnUUID"] != "_uuid" {
		t.Errorf("ColumnUUID = %q", consts["ColumnUUID"])
	}
	if schema.Name != DatabaseName {
		t.Errorf("DatabaseName = %q, schema says %q", DatabaseName, schema.Name)
	}
}

// parseConsts returns the string constants declared in a file of this
// package.
func parseConsts(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, id := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				out[id.Name] = constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0))
			}
		}
	}
	return out
}

package config

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the nodes one configuration may expand to (aliases
// included), so that a file of nested aliases cannot exhaust memory.
const maxNodes = 100_000

// decoder fills a value from a YAML node tree strictly: unknown and
// duplicate keys, wrong kinds and fractional integers are errors, each with
// its line and its full key path; it goes on after an error so that one run
// reports every problem. Go type names never reach a message.
type decoder struct {
	lines map[string]int // key path -> line of its key
	errs  []*FieldError
	nodes int
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
)

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names a node's kind for messages: a mapping, a list, or the value.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

// yamlFields maps the YAML keys of a struct type to field indexes.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	m := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
		names = append(names, name)
	}
	return m, names
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.fail(n, path, "the configuration expands to more than %d YAML nodes (aliases?)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, path, "unknown alias %q", n.Value)
			return
		}
		n = n.Alias
	}
	if v.CanAddr() {
		if rt, ok := v.Addr().Interface().(*RouteTargets); ok {
			d.routeTargets(n, rt, path)
			return
		}
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if v.Kind() == reflect.Struct && n.Kind == yaml.MappingNode {
			// yaml.v3 decodes inside a custom unmarshaler without
			// KnownFields: check the keys here.
			fields, names := yamlFields(v.Type())
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i]; k.Kind == yaml.ScalarNode {
					if _, ok := fields[k.Value]; !ok {
						d.fail(k, joinPath(path, k.Value), "unknown key (want %s)", strings.Join(names, ", "))
					}
				}
			}
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, path, "%s", cleanYAMLError(err))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping of keys, got %s", describe(n))
			return
		}
		fields, names := yamlFields(v.Type())
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.fail(k, path, "keys must be plain words, got %s", describe(k))
				continue
			}
			p := joinPath(path, k.Value)
			if l, dup := seen[k.Value]; dup {
				d.fail(k, p, "duplicate key (first at line %d)", l)
				continue
			}
			seen[k.Value] = k.Line
			idx, ok := fields[k.Value]
			if !ok {
				d.fail(k, p, "unknown key (want %s)", strings.Join(names, ", "))
				continue
			}
			d.lines[p] = k.Line
			d.decode(val, v.Field(idx), p)
		}
	case reflect.Slice:
		if isNull(n) {
			v.SetZero()
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "want a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.decode(item, s.Index(i), p)
		}
		v.Set(s)
	case reflect.Map:
		if isNull(n) {
			v.SetZero()
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			if l, dup := seen[k.Value]; dup {
				d.fail(k, p, "duplicate key (first at line %d)", l)
				continue
			}
			seen[k.Value] = k.Line
			d.lines[p] = k.Line
			kv := reflect.New(v.Type().Key()).Elem()
			before := len(d.errs)
			d.decode(k, kv, p)
			vv := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, vv, p)
			if len(d.errs) == before {
				m.SetMapIndex(kv, vv)
			}
		}
		v.Set(m)
	default:
		d.scalar(n, v, path)
	}
}

// scalar decodes strings, booleans, numbers and time.Duration.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a single value, got %s", describe(n))
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	tag := n.ShortTag()
	switch {
	case v.Type() == durationType:
		dur, err := parseDuration(n)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		v.SetString(n.Value)
	case v.Kind() == reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "%s is not true or false", describe(n))
			return
		}
		v.SetBool(b)
	case v.CanInt() || v.CanUint():
		if tag != "!!int" {
			d.fail(n, path, "%s is not a whole number", describe(n))
			return
		}
		var i int64
		if err := n.Decode(&i); err == nil {
			if (v.CanInt() && v.OverflowInt(i)) || (v.CanUint() && (i < 0 || v.OverflowUint(uint64(i)))) {
				d.fail(n, path, "%s is out of range (%s)", n.Value, intRange(v))
				return
			}
			if v.CanInt() {
				v.SetInt(i)
			} else {
				v.SetUint(uint64(i))
			}
			return
		}
		var u uint64
		if err := n.Decode(&u); err != nil || !v.CanUint() || v.OverflowUint(u) {
			d.fail(n, path, "%s is out of range (%s)", n.Value, intRange(v))
			return
		}
		v.SetUint(u)
	case v.CanFloat():
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.fail(n, path, "%s is not a number", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		d.fail(n, path, "cannot hold %s", describe(n))
	}
}

func intRange(v reflect.Value) string {
	bits := v.Type().Bits()
	if v.CanUint() {
		return fmt.Sprintf("0 to %d", uint64(1)<<bits-1)
	}
	return fmt.Sprintf("%d to %d", -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1)
}

// parseDuration reads a number of seconds or a Go duration ("90s", "1m30s"),
// refusing values that do not fit a time.Duration.
func parseDuration(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return 0, fmt.Errorf("want a duration (seconds or e.g. 90s), got %s", describe(n))
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		var secs float64
		if err := n.Decode(&secs); err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return 0, fmt.Errorf("%q is not a duration (seconds or e.g. 90s)", n.Value)
		}
		ns := secs * float64(time.Second)
		if ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return 0, fmt.Errorf("%s seconds is out of range (at most %d)", n.Value, int64(math.MaxInt64/int64(time.Second)))
		}
		return time.Duration(ns), nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (seconds or e.g. 90s, 5m)", n.Value)
	}
	return v, nil
}

var (
	yamlLinePrefix = regexp.MustCompile(`^line \d+: `)
	yamlTypeName   = regexp.MustCompile("cannot unmarshal !!(\\w+) (`[^`]*` )?into \\S+")
)

// cleanYAMLError strips yaml.v3's decoration ("yaml: unmarshal errors:",
// "line N:") and Go type names from an error of a custom unmarshaler.
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n")
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		l = yamlLinePrefix.ReplaceAllString(strings.TrimSpace(l), "")
		l = yamlTypeName.ReplaceAllStringFunc(l, func(s string) string {
			m := yamlTypeName.FindStringSubmatch(s)
			if m[2] != "" {
				return "unexpected value " + strings.TrimSpace(m[2])
			}
			return "unexpected " + kindWord(m[1])
		})
		if l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

func kindWord(tag string) string {
	switch tag {
	case "map":
		return "mapping"
	case "seq":
		return "list"
	}
	return tag
}

// routeTargets decodes evpn.route_targets: auto, or VNI -> {import, export}
// with the paths of the keys inside.
func (d *decoder) routeTargets(n *yaml.Node, r *RouteTargets, path string) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Value == "auto":
		r.Auto = true
	case n.Kind == yaml.MappingNode:
		d.decode(n, reflect.ValueOf(&r.VNIs).Elem(), path)
	default:
		d.fail(n, path, "%s is not auto or a map of VNIs", describe(n))
	}
}

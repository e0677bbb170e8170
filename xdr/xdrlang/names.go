package xdrlang

import "strings"

// prefixes are stripped from type and constant names (one of them, the longest first)
// because the Go package already says which program a name belongs to.
var prefixes = []string{"vir_net_", "virnet_", "keepalive_", "remote_", "admin_"}

var initialisms = map[string]bool{
	"XML": true, "UUID": true, "ID": true, "URI": true, "URL": true, "API": true,
	"CPU": true, "TLS": true,
}

// camel turns snake_case or UPPER_CASE into CamelCase with upper-case initialisms.
func camel(s string) string {
	var b strings.Builder
	for _, w := range words(s) {
		if w == "" {
			continue
		}
		up := strings.ToUpper(w)
		if initialisms[up] {
			b.WriteString(up)
			continue
		}
		lw := strings.ToLower(w)
		b.WriteString(strings.ToUpper(lw[:1]) + lw[1:])
	}
	out := b.String()
	if out == "" || (out[0] >= '0' && out[0] <= '9') {
		out = "X" + out
	}
	return out
}

// stripPrefix removes the program prefix and "nonnull_" from a .x name.
func stripPrefix(name string) string {
	l := strings.ToLower(name)
	for _, p := range prefixes {
		if strings.HasPrefix(l, p) && len(l) > len(p) {
			name, l = name[len(p):], l[len(p):]
			break
		}
	}
	if strings.HasPrefix(l, "nonnull_") && len(l) > len("nonnull_") {
		name = name[len("nonnull_"):]
	}
	return name
}

// GoName is the Go name of a .x type or constant: remote_nonnull_storage_pool →
// StoragePool, REMOTE_STRING_MAX → StringMax, REMOTE_PROC_STORAGE_POOL_GET_INFO →
// ProcStoragePoolGetInfo.
func GoName(name string) string { return camel(stripPrefix(name)) }

// FieldName is the Go name of a struct field or union arm: need_results → NeedResults.
func FieldName(name string) string { return camel(name) }

// words splits on underscores and, inside mixed-case words, before each upper-case run
// (callbackID → callback ID, usageType → usage Type).
func words(s string) []string {
	var out []string
	for _, w := range strings.Split(s, "_") {
		if w == strings.ToUpper(w) || w == strings.ToLower(w) {
			out = append(out, w)
			continue
		}
		start := 0
		for i := 1; i < len(w); i++ {
			if isUpper(w[i]) && !isUpper(w[i-1]) {
				out = append(out, w[start:i])
				start = i
			}
		}
		out = append(out, w[start:])
	}
	return out
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

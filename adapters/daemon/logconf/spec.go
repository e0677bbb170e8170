// Package logconf applies libvirt's logging settings (log_level, log_filters,
// log_outputs) to a logrus logger owned by the daemon, and lets virt-admin read
// and change them while the daemon runs.
package logconf

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
)

// libvirt's priorities; a message passes a threshold when its priority is at
// least the threshold's.
const (
	PriorityDebug = 1
	PriorityInfo  = 2
	PriorityWarn  = 3
	PriorityError = 4
)

// Destination kinds of a log output, spelled as in log_outputs.
const (
	DestStderr   = "stderr"
	DestSyslog   = "syslog"
	DestFile     = "file"
	DestJournald = "journald"
)

// Output is one parsed element of log_outputs.
type Output struct {
	Priority int
	Dest     string
	// Name is the syslog ident or the absolute file path; empty otherwise.
	Name string
}

// String renders the output as log_outputs spells it.
func (o Output) String() string {
	if o.Name != "" {
		return fmt.Sprintf("%d:%s:%s", o.Priority, o.Dest, o.Name)
	}
	return fmt.Sprintf("%d:%s", o.Priority, o.Dest)
}

// Filter is one parsed element of log_filters.
type Filter struct {
	Priority int
	// Pattern is the glob matched against a whole module name: libvirt wraps
	// what the user wrote in '*' so that a plain word matches as a substring.
	Pattern string
}

// String renders the filter as libvirt reports it back, with the stored,
// wrapped pattern.
func (f Filter) String() string { return fmt.Sprintf("%d:%s", f.Priority, f.Pattern) }

func parsePriority(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < PriorityDebug || n > PriorityError || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	return n, true
}

// ParseOutputs parses a log_outputs string. A later output to the same
// destination replaces an earlier one, as in libvirt.
func ParseOutputs(s string) ([]Output, error) {
	var out []Output
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		o, err := parseOutput(tok)
		if err != nil {
			return nil, err
		}
		for i, prev := range out {
			if prev.Dest == o.Dest && prev.Name == o.Name {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func parseOutput(tok string) (Output, error) {
	parts := strings.Split(tok, ":")
	if len(parts) < 2 {
		return Output{}, fmt.Errorf("logconf: malformed log output %q: want LEVEL:DESTINATION[:DATA]", tok)
	}
	prio, ok := parsePriority(parts[0])
	if !ok {
		return Output{}, fmt.Errorf("logconf: invalid log priority %q in log output %q: want 1 to 4", parts[0], tok)
	}
	o := Output{Priority: prio, Dest: parts[1]}
	switch o.Dest {
	case DestStderr, DestJournald:
		if len(parts) != 2 {
			return Output{}, fmt.Errorf("logconf: log output %q: destination %q takes no data", tok, o.Dest)
		}
	case DestSyslog, DestFile:
		// A path may hold ':' in theory but libvirt splits on every ':' too.
		if len(parts) != 3 || parts[2] == "" {
			return Output{}, fmt.Errorf("logconf: log output %q: destination %q wants %s", tok, o.Dest,
				map[string]string{DestSyslog: "an ident, as LEVEL:syslog:IDENT", DestFile: "a path, as LEVEL:file:PATH"}[o.Dest])
		}
		o.Name = parts[2]
		if o.Dest == DestFile {
			abs, err := filepath.Abs(o.Name)
			if err != nil {
				return Output{}, fmt.Errorf("logconf: log output %q: %w", tok, err)
			}
			o.Name = abs
		}
	default:
		return Output{}, fmt.Errorf("logconf: invalid log destination %q in log output %q: want stderr, syslog, file or journald", o.Dest, tok)
	}
	return o, nil
}

// FormatOutputs renders outputs the way virt-admin daemon-log-outputs shows them.
func FormatOutputs(outputs []Output) string {
	parts := make([]string, len(outputs))
	for i, o := range outputs {
		parts[i] = o.String()
	}
	return strings.Join(parts, " ")
}

// ParseFilters parses a log_filters string.
func ParseFilters(s string) ([]Filter, error) {
	var out []Filter
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		prioText, match, ok := strings.Cut(tok, ":")
		if !ok {
			return nil, fmt.Errorf("logconf: malformed log filter %q: want LEVEL:MATCH", tok)
		}
		prio, ok := parsePriority(prioText)
		if !ok {
			return nil, fmt.Errorf("logconf: invalid log priority %q in log filter %q: want 1 to 4", prioText, tok)
		}
		// '+' once asked libvirt for stack traces; it is accepted and dropped.
		match = strings.TrimPrefix(match, "+")
		if match == "" {
			return nil, fmt.Errorf("logconf: log filter %q has an empty match", tok)
		}
		out = append(out, Filter{Priority: prio, Pattern: "*" + match + "*"})
	}
	return out, nil
}

// FormatFilters renders filters exactly as libvirt's daemon-log-filters
// reports them: every filter followed by a space, "" for none.
func FormatFilters(filters []Filter) string {
	var b strings.Builder
	for _, f := range filters {
		b.WriteString(f.String())
		b.WriteByte(' ')
	}
	return b.String()
}

// Match reports whether the glob pattern (only '*' and '?' are special, as in
// GLib's g_pattern_match_simple) matches the whole of name.
func Match(pattern, name string) bool {
	// Iterative glob with single-star backtracking: linear enough for the
	// short patterns of a config file and never recursive.
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			starP, starN = p, n
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case starP >= 0:
			starN++
			p, n = starP+1, starN
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// PriorityOf maps a logrus level to libvirt's priority.
func PriorityOf(l logrus.Level) int {
	switch l {
	case logrus.TraceLevel, logrus.DebugLevel:
		return PriorityDebug
	case logrus.InfoLevel:
		return PriorityInfo
	case logrus.WarnLevel:
		return PriorityWarn
	}
	return PriorityError
}

// LevelOf maps libvirt's priority to the least severe logrus level it lets through.
func LevelOf(priority int) logrus.Level {
	switch priority {
	case PriorityDebug:
		return logrus.DebugLevel
	case PriorityInfo:
		return logrus.InfoLevel
	case PriorityWarn:
		return logrus.WarnLevel
	}
	return logrus.ErrorLevel
}

func priorityName(p int) string {
	switch p {
	case PriorityDebug:
		return "debug"
	case PriorityInfo:
		return "info"
	case PriorityWarn:
		return "warning"
	}
	return "error"
}

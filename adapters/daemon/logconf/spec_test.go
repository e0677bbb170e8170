package logconf_test

import (
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/logconf"
)

func TestParseOutputs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       string
		wantString string
		wantErr    string
	}{
		{name: "empty", give: "", wantString: ""},
		{name: "stderr", give: "3:stderr", wantString: "3:stderr"},
		{name: "journald", give: "2:journald", wantString: "2:journald"},
		{name: "syslog", give: "1:syslog:virtstoraged", wantString: "1:syslog:virtstoraged"},
		{name: "file", give: "1:file:/var/log/libvirt/virtstoraged.log", wantString: "1:file:/var/log/libvirt/virtstoraged.log"},
		{name: "file path cleaned", give: "1:file:/var/log/../log/x.log", wantString: "1:file:/var/log/x.log"},
		{name: "several with extra spaces", give: "  3:stderr   1:file:/tmp/a ", wantString: "3:stderr 1:file:/tmp/a"},
		{name: "later same destination replaces", give: "3:stderr 1:file:/tmp/a 1:stderr", wantString: "1:file:/tmp/a 1:stderr"},
		{name: "different files both kept", give: "1:file:/tmp/a 2:file:/tmp/b", wantString: "1:file:/tmp/a 2:file:/tmp/b"},

		{name: "no destination", give: "3", wantErr: `malformed log output "3"`},
		{name: "bad priority", give: "5:stderr", wantErr: `invalid log priority "5" in log output "5:stderr"`},
		{name: "word priority", give: "x:stderr", wantErr: `invalid log priority "x"`},
		{name: "signed priority", give: "+1:stderr", wantErr: `invalid log priority "+1"`},
		{name: "unknown destination", give: "3:stdout", wantErr: `invalid log destination "stdout" in log output "3:stdout"`},
		{name: "stderr with data", give: "3:stderr:x", wantErr: `log output "3:stderr:x": destination "stderr" takes no data`},
		{name: "file without path", give: "1:file", wantErr: `log output "1:file": destination "file" wants a path`},
		{name: "file empty path", give: "1:file:", wantErr: `log output "1:file:": destination "file" wants a path`},
		{name: "syslog without ident", give: "1:syslog", wantErr: `destination "syslog" wants an ident`},
		{name: "bad token among good", give: "3:stderr 9:journald", wantErr: `"9:journald"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := logconf.ParseOutputs(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "logconf: ") {
					t.Fatalf("ParseOutputs(%q) error = %v, want %q", tt.give, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOutputs(%q) error = %v", tt.give, err)
			}
			if s := logconf.FormatOutputs(got); s != tt.wantString {
				t.Fatalf("FormatOutputs(ParseOutputs(%q)) = %q, want %q", tt.give, s, tt.wantString)
			}
		})
	}
}

func TestParseFilters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		give       string
		wantString string
		wantErr    string
	}{
		{name: "empty", give: "", wantString: ""},
		{name: "spaces only", give: "   ", wantString: ""},
		{name: "plain words wrapped in stars", give: "1:storage 3:rpc", wantString: "1:*storage* 3:*rpc* "},
		{name: "globs wrapped too", give: "1:*storage*", wantString: "1:**storage** "},
		{name: "plus dropped", give: "2:+storage.dir", wantString: "2:*storage.dir* "},

		{name: "no colon", give: "storage", wantErr: `malformed log filter "storage"`},
		{name: "bad priority", give: "0:rpc", wantErr: `invalid log priority "0" in log filter "0:rpc"`},
		{name: "empty match", give: "1:", wantErr: `log filter "1:" has an empty match`},
		{name: "only plus", give: "1:+", wantErr: `log filter "1:+" has an empty match`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := logconf.ParseFilters(tt.give)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseFilters(%q) error = %v, want %q", tt.give, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFilters(%q) error = %v", tt.give, err)
			}
			if s := logconf.FormatFilters(got); s != tt.wantString {
				t.Fatalf("FormatFilters(ParseFilters(%q)) = %q, want %q", tt.give, s, tt.wantString)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		givePattern string
		giveName    string
		want        bool
	}{
		{"*storage*", "storage", true},
		{"*storage*", "storage.dir", true},
		{"*storage*", "rpc", false},
		{"*dir*", "storage.dir", true},
		{"*st?rage*", "storage", true},
		{"***", "", true},
		{"***", "anything", true},
		{"*rpc*", "", false},
		{"*storage.d*r*", "storage.dir", true},
		{"*a*b*", "aXXbXXa", true},
		{"*a*b*c", "abab", false},
		{"storage", "storage.dir", false},
		{"*", "*", true},
	}
	for _, tt := range tests {
		if got := logconf.Match(tt.givePattern, tt.giveName); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.givePattern, tt.giveName, got, tt.want)
		}
	}
}

package conffile_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/adapters/daemon/conffile"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
)

func TestParse(t *testing.T) {
	t.Parallel()
	str := func(s string, line int) conffile.Value {
		return conffile.Value{Kind: conffile.KindString, Str: s, Line: line}
	}
	num := func(n int64, line int) conffile.Value {
		return conffile.Value{Kind: conffile.KindInt, Int: n, Line: line}
	}
	tests := []struct {
		name    string
		give    string
		want    []conffile.Entry
		wantErr string
	}{
		{name: "empty", give: "", want: nil},
		{name: "only comments and blanks", give: "# hello\n\n   \n\t# x = 1\n", want: nil},
		{name: "double quoted", give: `a = "x y"`, want: []conffile.Entry{{Key: "a", Value: str("x y", 1), Line: 1}}},
		{name: "single quoted keeps double quotes", give: `a='say "hi"'`, want: []conffile.Entry{{Key: "a", Value: str(`say "hi"`, 1), Line: 1}}},
		{name: "triple quoted spans lines", give: "a = \"\"\"one\ntwo\"\"\"\nb = 1", want: []conffile.Entry{
			{Key: "a", Value: str("one\ntwo", 1), Line: 1}, {Key: "b", Value: num(1, 3), Line: 3}}},
		{name: "integers", give: "a = 5\nb = -3\nc = +7\n", want: []conffile.Entry{
			{Key: "a", Value: num(5, 1), Line: 1}, {Key: "b", Value: num(-3, 2), Line: 2}, {Key: "c", Value: num(7, 3), Line: 3}}},
		{name: "trailing comment", give: "a = 5 # five\n", want: []conffile.Entry{{Key: "a", Value: num(5, 1), Line: 1}}},
		{name: "semicolon separator", give: "a = 1; b = 2", want: []conffile.Entry{
			{Key: "a", Value: num(1, 1), Line: 1}, {Key: "b", Value: num(2, 1), Line: 1}}},
		{name: "key with digits and underscore", give: "a_b2 = 1", want: []conffile.Entry{{Key: "a_b2", Value: num(1, 1), Line: 1}}},
		{name: "crlf line ends", give: "a = 1\r\nb = 2\r\n", want: []conffile.Entry{
			{Key: "a", Value: num(1, 1), Line: 1}, {Key: "b", Value: num(2, 2), Line: 2}}},
		{name: "list over lines with trailing comma and comments", give: "l = [\n  \"a\", # first\n  'b',\n]\nx = 1\n", want: []conffile.Entry{
			{Key: "l", Value: conffile.Value{Kind: conffile.KindList, Line: 1, List: []conffile.Value{str("a", 2), str("b", 3)}}, Line: 1},
			{Key: "x", Value: num(1, 5), Line: 5}}},
		{name: "empty list", give: "l = []", want: []conffile.Entry{{Key: "l", Value: conffile.Value{Kind: conffile.KindList, Line: 1}, Line: 1}}},
		{name: "duplicates kept in order", give: "a = 1\na = 2", want: []conffile.Entry{
			{Key: "a", Value: num(1, 1), Line: 1}, {Key: "a", Value: num(2, 2), Line: 2}}},

		{name: "missing value", give: "\n\na =\n", wantErr: "conffile: f.conf:3: expected value after '='"},
		{name: "missing value before comment", give: "a = # x", wantErr: "conffile: f.conf:1: expected value after '='"},
		{name: "missing equals", give: "a 1", wantErr: `conffile: f.conf:1: expected '=' after "a", found '1'`},
		{name: "bad key start", give: "_a = 1", wantErr: `conffile: f.conf:1: expected a key name, found '_'`},
		{name: "unterminated string", give: "a = \"abc\nb = 1", wantErr: "conffile: f.conf:1: unterminated string"},
		{name: "unterminated single", give: "a = 'abc", wantErr: "conffile: f.conf:1: unterminated string"},
		{name: "unterminated triple", give: "\na = \"\"\"abc\n\n", wantErr: "conffile: f.conf:2: unterminated string"},
		{name: "bare word", give: "a = yes", wantErr: "conffile: f.conf:1: expected a value (string, integer or list), found 'y'"},
		{name: "sign without digits", give: "a = -", wantErr: "conffile: f.conf:1: expected digits in number, found end of file"},
		{name: "number too big", give: "a = 99999999999999999999", wantErr: "conffile: f.conf:1: number 99999999999999999999 out of range"},
		{name: "two values", give: `a = "x" "y"`, wantErr: `conffile: f.conf:1: expected end of line after value, found '"'`},
		{name: "unclosed list", give: "a = [ \"x\",\n", wantErr: "conffile: f.conf:2: list is not closed with ']'"},
		{name: "list without comma", give: "a = [ \"x\" \"y\" ]", wantErr: `conffile: f.conf:1: expected ',' or ']' in list, found '"'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := conffile.Parse("f.conf", []byte(tt.give))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Parse() error = %v, want %q", err, tt.wantErr)
				}
				var se *conffile.SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("error %T is not a *SyntaxError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Parse's worst measured case is a long list of one-digit numbers, "[1,1,...]":
// 136 bytes per input byte at 16 KB and 172 at 160 KB, as the value slice's
// doubling adds up; fuzzing found at most 32. Small inputs stay under 2.5 KB.
// LoadBytes adds the Config on top, 133 per byte for "a=1" lines. Twice the
// worst still trips on anything that copies the input per entry or sizes a
// buffer from a number it read.
const (
	confAllocPerByte = 384
	confAllocSlack   = 16 << 10
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a = 1\n", `b = "x"`, "l = [ 'a',\n'b', ]", "c = \"\"\"x\ny\"\"\"", "# c\n", "a = -5; b = +3",
		"log_outputs=\"1:file:/tmp/x\"", "[", "a = [[1,2],[3]]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		var entries []conffile.Entry
		var err error
		n := testkit.AllocatedBytes(func() { entries, err = conffile.Parse("fuzz.conf", src) })
		if limit := confAllocPerByte*uint64(len(src)) + confAllocSlack; n > limit {
			t.Fatalf("Parse of %d bytes allocated %d, bound %d", len(src), n, limit)
		}
		if err != nil {
			var se *conffile.SyntaxError
			if !errors.As(err, &se) || se.Line < 1 {
				t.Fatalf("bad error %#v", err)
			}
			return
		}
		for _, e := range entries {
			if e.Key == "" || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
		}
		n = testkit.AllocatedBytes(func() { _, _, _ = conffile.LoadBytes("fuzz.conf", src) })
		if limit := confAllocPerByte*uint64(len(src)) + confAllocSlack; n > limit {
			t.Fatalf("LoadBytes of %d bytes allocated %d, bound %d", len(src), n, limit)
		}
	})
}

package protocoltest_test

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/virtstoraged-go/virtstoraged/xdr"
)

// traceMessage is one line of testdata/trace-messages.txt.
type traceMessage struct {
	line            int
	dir, prog, name string
	proc            int32
	typ, status     string
	payloadLen      int
}

func readTraceMessages(t *testing.T) []traceMessage {
	t.Helper()
	f, err := os.Open("testdata/trace-messages.txt")
	if err != nil {
		t.Fatalf("open trace fixture: %v", err)
	}
	defer f.Close()
	var out []traceMessage
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 7 {
			t.Fatalf("line %d: want 7 fields: %q", n, line)
		}
		num, name, ok := strings.Cut(fs[3], ":")
		proc, err := strconv.Atoi(num)
		if !ok || err != nil {
			t.Fatalf("line %d: bad procedure %q", n, fs[3])
		}
		plen, err := strconv.Atoi(strings.TrimPrefix(fs[6], "len="))
		if err != nil {
			t.Fatalf("line %d: bad length %q", n, fs[6])
		}
		out = append(out, traceMessage{line: n, dir: fs[0], prog: fs[1], proc: int32(proc), name: name,
			typ: fs[4], status: fs[5], payloadLen: plen})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read trace fixture: %v", err)
	}
	return out
}

// minSize is the encoded size of a zero body: empty strings and arrays, absent optionals.
// Every real payload of that body is at least this long and differs by whole XDR units.
func minSize(t *testing.T, mk func() xdr.Message) int {
	t.Helper()
	e := xdr.NewEncoder(nil)
	if err := mk().Encode(e); err != nil {
		t.Fatalf("encode zero %T: %v", mk(), err)
	}
	return e.Len()
}

// TestTraceShapes replays the shape of every distinct message libvirt 9.0 clients and
// libvirtd exchanged in the recorded traces against our dispatch tables: numbers and names
// agree, void bodies are exactly the empty payloads, non-void payloads are large enough
// for their type, and stream packets only follow @stream procedures.
func TestTraceShapes(t *testing.T) {
	progs := map[string]uint32{"REMOTE": progRemote, "ADMIN": progAdmin, "KEEPALIVE": progKeepalive}
	const errMin = 11 * 4 // remote_error with every optional absent
	msgs := readTraceMessages(t)
	if len(msgs) < 200 {
		t.Fatalf("only %d trace messages, fixture truncated?", len(msgs))
	}
	for _, m := range msgs {
		prog, ok := progs[m.prog]
		if !ok {
			t.Errorf("line %d: unexpected program %s", m.line, m.prog)
			continue
		}
		info := lookupProc(prog, m.proc)
		if info == nil {
			t.Errorf("line %d: %s procedure %d (%s) seen on the wire is not in our table", m.line, m.prog, m.proc, m.name)
			continue
		}
		if want := m.prog + "_PROC_" + m.name; info.Name != want {
			t.Errorf("line %d: procedure %d is %s here, %s on the wire", m.line, m.proc, info.Name, want)
		}
		var mk func() xdr.Message
		switch {
		case m.status == "ERROR" && m.dir == "S>C":
			if m.payloadLen < errMin || m.payloadLen%4 != 0 {
				t.Errorf("line %d: error payload of %d bytes cannot be a remote_error", m.line, m.payloadLen)
			}
			continue
		case m.typ == "STREAM" || m.typ == "STREAM_HOLE":
			if info.Stream == xdr.StreamNone {
				t.Errorf("line %d: %s packet for %s, which is not a @stream procedure", m.line, m.typ, info.Name)
			}
			continue
		case m.typ == "CALL":
			mk = info.NewArgs
		case m.typ == "REPLY":
			mk = info.NewRet
		case m.typ == "MESSAGE":
			if !info.Async {
				t.Errorf("line %d: MESSAGE for %s, which is not @message", m.line, info.Name)
			}
			mk = info.NewArgs
		default:
			t.Errorf("line %d: unexpected type %s", m.line, m.typ)
			continue
		}
		if mk == nil {
			if m.payloadLen != 0 {
				t.Errorf("line %d: %s %s is void here but carried %d bytes", m.line, info.Name, m.typ, m.payloadLen)
			}
			continue
		}
		if lo := minSize(t, mk); m.payloadLen < lo || (m.payloadLen-lo)%4 != 0 {
			t.Errorf("line %d: %s %s of %d bytes does not fit %T (at least %d, in 4-byte steps)",
				m.line, info.Name, m.typ, m.payloadLen, mk(), lo)
		}
	}
}

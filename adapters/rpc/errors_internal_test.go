package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/xdr"
)

func TestMapErrorEveryKind(t *testing.T) {
	seen := map[int32]domain.Kind{}
	for _, k := range domain.Kinds() {
		t.Run(fmt.Sprintf("kind%d", k), func(t *testing.T) {
			de := &domain.Error{Kind: k, Detail: "detail text"}
			got := mapError(fmt.Errorf("service: wrapped: %w", de), scopeStorage)
			if got.Code != k.Code() || got.Code == 0 {
				t.Errorf("code = %d, want %d", got.Code, k.Code())
			}
			if prev, dup := seen[got.Code]; dup {
				t.Errorf("code %d shared with kind %d", got.Code, prev)
			}
			seen[got.Code] = k
			if got.Domain != de.ErrorDomain() {
				t.Errorf("domain = %d, want %d", got.Domain, de.ErrorDomain())
			}
			if got.Message != de.Error() || got.Message != strings.Replace(k.Format(), "%s", "detail text", 1) {
				t.Errorf("message = %q, want %q", got.Message, de.Error())
			}
			if got.Str1 != k.Format() || got.Str2 != "detail text" || got.Int1 != -1 {
				t.Errorf("str1 %q str2 %q int1 %d", got.Str1, got.Str2, got.Int1)
			}
			w := got.wire()
			if len(w.Message) != 1 || w.Level != 2 || w.Int2 != -1 || len(w.Dom) != 0 || len(w.Net) != 0 {
				t.Errorf("wire = %+v", w)
			}
		})
	}
}

func TestMapError(t *testing.T) {
	tests := []struct {
		name       string
		giveErr    error
		giveScope  errorScope
		wantCode   int32
		wantDomain int32
		wantMsg    string
		wantStr1   string
		wantInt1   int32
		wantStr2   string // "" for the detail the message ends with
		wantInt2   int32
	}{
		// virReportInvalidArg: the function and the argument in str1 and
		// str2, 0 in int1 and int2 (measured against libvirtd).
		{name: "bare flags error", giveErr: domain.ErrUnsupportedFlags(0x40, "storagePoolRefresh"),
			wantCode: 8, wantDomain: 18, wantMsg: "unsupported flags (0x40) in function storagePoolRefresh", wantStr1: "storagePoolRefresh",
			wantStr2: "flags", wantInt1: 0, wantInt2: 0},
		{name: "system error errno", giveErr: &domain.Error{Kind: domain.KindSystem, Domain: domain.FromStreams, Detail: "cannot write to stream: No space left on device", Errno: 28},
			wantCode: 38, wantDomain: 38, wantMsg: "cannot write to stream: No space left on device", wantStr1: "%s", wantInt1: 28},
		{name: "xml domain", giveErr: &domain.Error{Kind: domain.KindXMLError, Domain: domain.FromXML, Detail: "bad"},
			wantCode: 27, wantDomain: 5, wantMsg: "XML error: bad", wantStr1: "XML error: %s", wantInt1: -1},
		{name: "unsupported storage", giveErr: &xdr.UnsupportedError{API: "virStorageVolWipe"}, giveScope: scopeStorage,
			wantCode: 3, wantDomain: 18, wantMsg: "this function is not supported by the connection driver: virStorageVolWipe",
			wantStr1: "this function is not supported by the connection driver: %s", wantInt1: -1},
		{name: "unsupported connect", giveErr: &xdr.UnsupportedError{API: "virConnectGetVersion"}, giveScope: scopeConnect,
			wantCode: 3, wantDomain: 20, wantMsg: "this function is not supported by the connection driver: virConnectGetVersion",
			wantStr1: "this function is not supported by the connection driver: %s", wantInt1: -1},
		{name: "unsupported secret", giveErr: &xdr.UnsupportedError{API: "virConnectListAllSecrets"}, giveScope: scopeSecret,
			wantCode: 3, wantDomain: 30, wantMsg: "this function is not supported by the connection driver: virConnectListAllSecrets",
			wantStr1: "this function is not supported by the connection driver: %s", wantInt1: -1},
		{name: "unsupported admin", giveErr: &xdr.UnsupportedError{API: "virAdmX"}, giveScope: scopeAdmin,
			wantCode: 3, wantDomain: 62, wantMsg: "this function is not supported by the connection driver: virAdmX",
			wantStr1: "this function is not supported by the connection driver: %s", wantInt1: -1},
		{name: "decode error", giveErr: &xdr.DecodeError{Proc: 84, Err: errors.New("short")},
			wantCode: 39, wantDomain: 7, wantMsg: "Unable to decode message payload", wantStr1: "%s", wantInt1: -1},
		{name: "rpc error", giveErr: rpcError("unknown procedure: %d", 9999),
			wantCode: 39, wantDomain: 7, wantMsg: "unknown procedure: 9999", wantStr1: "%s", wantInt1: -1},
		{name: "domain 0 internal", giveErr: internalError(fromNone, "x"),
			wantCode: 1, wantDomain: 0, wantMsg: "internal error: x", wantStr1: "internal error: %s", wantInt1: -1},
		{name: "foreign error", giveErr: errors.New("service: boom"),
			wantCode: 1, wantDomain: 18, wantMsg: "internal error: service: boom", wantStr1: "internal error: %s", wantInt1: -1},
		{name: "foreign error on connect", giveErr: errors.New("boom"), giveScope: scopeConnect,
			wantCode: 1, wantDomain: 7, wantMsg: "internal error: boom", wantStr1: "internal error: %s", wantInt1: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(tt.giveErr, tt.giveScope)
			wantStr2, wantInt2 := tt.wantStr2, tt.wantInt2
			if wantStr2 == "" {
				wantStr2, wantInt2 = strings.TrimPrefix(tt.wantMsg, strings.TrimSuffix(tt.wantStr1, "%s")), -1
			}
			if got.Code != tt.wantCode || got.Domain != tt.wantDomain || got.Message != tt.wantMsg || got.Str1 != tt.wantStr1 || got.Int1 != tt.wantInt1 ||
				got.Str2 != wantStr2 || got.Int2 != wantInt2 {
				t.Errorf("got %+v, want %d/%d %q str1 %q str2 %q int1 %d int2 %d", got, tt.wantCode, tt.wantDomain, tt.wantMsg, tt.wantStr1, wantStr2, tt.wantInt1, wantInt2)
			}
		})
	}
}

func TestHugeErrorTextStaysEncodable(t *testing.T) {
	name := make([]byte, 4194304)
	for i := range name {
		name[i] = 'a'
	}
	f := mapError(domain.ErrPoolNotFoundName(string(name)), scopeStorage)
	frame, err := encodeMessage(header{prog: progRemote, vers: 1, proc: 84, typ: typeReply, status: statusError}, f.wire())
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) > 3*maxErrorText+1024 {
		t.Errorf("error frame of %d bytes", len(frame))
	}
}

func TestGate(t *testing.T) {
	g := newGate(1, 1)
	r1, err := g.acquire(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.acquire(ctx, false); err == nil {
		t.Fatal("second ordinary slot granted")
	}
	r2, err := g.acquire(t.Context(), true)
	if err != nil {
		t.Fatal("priority slot refused")
	}
	got := make(chan struct{})
	go func() {
		r, err := g.acquire(t.Context(), false)
		if err == nil {
			r()
		}
		close(got)
	}()
	waitGate(t, g, 1)
	g.setLimits(2, 1)
	<-got
	r1()
	r2()
	r1() // releasing twice must not free two slots
	if s := g.stats(); s.busy != 0 || s.busyPrio != 0 {
		t.Errorf("stats after release = %+v", s)
	}
}

func waitGate(t *testing.T, g *gate, waiting int) {
	for i := 0; i < 500; i++ {
		if g.stats().waiting == waiting {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("never %d waiters", waiting)
}

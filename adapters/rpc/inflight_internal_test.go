package rpc

import (
	"context"
	"testing"
	"time"
)

// A connection never has more than uploadChunks upload buffers out: the next
// get waits until one comes back, and gets that very buffer.
func TestChunkSetCapsBuffersOut(t *testing.T) {
	cs := newChunkSet(newChunkPool(&relief{}))
	cs.beginUpload()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out [][]byte
	for range uploadChunks {
		b, err := cs.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != uploadChunk {
			t.Fatalf("buffer of %d bytes, want %d", len(b), uploadChunk)
		}
		out = append(out, b)
	}
	got := make(chan []byte)
	go func() {
		b, err := cs.get(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatalf("a connection got upload buffer %d while %d were out", uploadChunks+1, uploadChunks)
	default:
	}
	back := out[3][:10] // a writer gives back the chunk it was handed, shortened
	cs.put(back)
	if b := <-got; &b[0] != &out[3][0] || len(b) != uploadChunk {
		t.Errorf("the waiting get did not get the buffer given back, whole")
	}
	// Once the connection's last upload ends, its buffers go to the pool,
	// which keeps one connection's worth and lets the rest go.
	for _, b := range out {
		cs.put(b)
	}
	cs.endUpload()
	if n := len(cs.pool.free); n != uploadChunks {
		t.Errorf("pool keeps %d buffers, want %d", n, uploadChunks)
	}
	if len(cs.free) != 0 {
		t.Errorf("the connection kept %d buffers after its last upload", len(cs.free))
	}
	other := newChunkSet(cs.pool)
	other.beginUpload()
	for range uploadChunks {
		if _, err := other.get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(cs.pool.free); n != 0 {
		t.Errorf("a new connection's upload left %d buffers in the pool, want all %d taken", n, uploadChunks)
	}
}

// The pool is bounded: buffers beyond it are let go, and the relief gives
// them back to the system once nothing more comes or goes.
func TestChunkPoolIsBounded(t *testing.T) {
	released := make(chan struct{}, 4)
	r := &relief{release: func() { released <- struct{}{} }}
	defer r.stop()
	p := newChunkPool(r)
	for range uploadChunks {
		p.put(make([]byte, uploadChunk))
	}
	r.mu.Lock()
	armed := r.timer != nil
	r.mu.Unlock()
	if armed {
		t.Errorf("the relief was armed by buffers the pool kept")
	}
	p.put(make([]byte, uploadChunk))
	if n := len(p.free); n != uploadChunks {
		t.Errorf("pool holds %d buffers, want %d", n, uploadChunks)
	}
	select {
	case <-released:
	case <-time.After(10 * reliefQuiet):
		t.Fatalf("a buffer the pool let go was not given back within %v", 10*reliefQuiet)
	}
}

// The relief releases a quiet period after the last large buffer, once for
// a burst of them, and is armed again by a buffer after a release.
func TestReliefReleasesWhenQuiet(t *testing.T) {
	released := make(chan time.Time, 4)
	r := &relief{release: func() { released <- time.Now() }}
	defer r.stop()
	var last time.Time
	for range 5 {
		last = time.Now() // before: the timer counts from inside churn
		r.churn()
	}
	select {
	case at := <-released:
		if at.Sub(last) < reliefQuiet {
			t.Errorf("released %v after the last buffer, before the quiet period of %v", at.Sub(last), reliefQuiet)
		}
	case <-time.After(10 * reliefQuiet):
		t.Fatalf("no release within %v of the last buffer", 10*reliefQuiet)
	}
	r.churn()
	select {
	case <-released:
	case <-time.After(10 * reliefQuiet):
		t.Fatalf("a buffer after a release did not arm the relief again")
	}
	if n := len(released); n != 0 {
		t.Errorf("%d releases more than the two bursts", n)
	}
	// A nil relief (or one without ReleaseMemory) does nothing.
	var none *relief
	none.churn()
	(&relief{}).churn()
}

// A byteGate lets bodies in up to its size, and a body that would go over
// waits until enough comes back.
func TestByteGateWaitsForRoom(t *testing.T) {
	g := newByteGate(100)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []int{60, 40} {
		if err := g.acquire(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error)
	go func() { got <- g.acquire(ctx, 50) }()
	select {
	case <-got:
		t.Fatalf("50 bytes granted with 100 of 100 taken")
	default:
	}
	g.release(40)
	select {
	case <-got:
		t.Fatalf("50 bytes granted with 60 of 100 taken")
	default:
	}
	g.release(60)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	g.release(50)
	g.mu.Lock()
	used := g.used
	g.mu.Unlock()
	if used != 0 {
		t.Errorf("%d bytes still taken after every body came back", used)
	}
	if err := g.acquire(ctx, 100); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if err := g.acquire(cctx, 1); err == nil {
		t.Errorf("acquire on an ended context with no room succeeded")
	}
}

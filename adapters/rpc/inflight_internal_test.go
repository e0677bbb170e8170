package rpc

import (
	"context"
	"testing"
	"time"
)

// A connection never has more than uploadChunks upload buffers out: the next
// get waits until one comes back, and gets that very buffer.
func TestChunkSetCapsBuffersOut(t *testing.T) {
	r := &relief{}
	cs := newChunkSet(newChunkPool(r))
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

// The pool is bounded: buffers beyond it are let go and counted for the
// relief.
func TestChunkPoolIsBounded(t *testing.T) {
	released := make(chan struct{}, 4)
	r := &relief{release: func() { released <- struct{}{} }}
	p := newChunkPool(r)
	const extra = 3
	for range uploadChunks + extra {
		p.put(make([]byte, uploadChunk))
	}
	if n := len(p.free); n != uploadChunks {
		t.Errorf("pool holds %d buffers, want %d", n, uploadChunks)
	}
	r.mu.Lock()
	let := r.let
	r.mu.Unlock()
	if let != extra*uploadChunk {
		t.Errorf("relief counted %d bytes let go, want %d", let, extra*uploadChunk)
	}
	r.stop()
}

// The relief calls ReleaseMemory once reliefThreshold bytes have come and
// gone and things are quiet, and not before the threshold.
func TestReliefReleasesAfterThreshold(t *testing.T) {
	released := make(chan struct{}, 4)
	r := &relief{release: func() { released <- struct{}{} }}
	defer r.stop()
	r.churned(reliefThreshold - 1)
	r.mu.Lock()
	armed := r.timer != nil
	r.mu.Unlock()
	if armed {
		t.Fatalf("release scheduled below the threshold")
	}
	r.churned(1)
	select {
	case <-released:
	case <-time.After(10 * reliefQuiet):
		t.Fatalf("no release %v after the threshold was reached", 10*reliefQuiet)
	}
	r.mu.Lock()
	let := r.let
	r.mu.Unlock()
	if let != 0 {
		t.Errorf("%d bytes still counted after the release", let)
	}
	// A nil relief (or one without ReleaseMemory) counts nothing.
	var none *relief
	none.churned(reliefThreshold)
	(&relief{}).churned(reliefThreshold)
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

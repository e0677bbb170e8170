package service_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/virtstoraged-go/virtstoraged/domain"
	"github.com/virtstoraged-go/virtstoraged/domain/service"
	"github.com/virtstoraged-go/virtstoraged/internal/testkit"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

// heldJob is a backend call held mid-way by a test hook: it reports done
// bytes of progress, then waits for release.
type heldJob struct {
	started chan struct{}
	release chan struct{}
}

func newHeldJob() *heldJob {
	return &heldJob{started: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldJob) hook(name string, done int64) func(ctx context.Context, vol *domain.VolDef) error {
	return func(ctx context.Context, vol *domain.VolDef) error {
		if vol.Name != name {
			return nil
		}
		ports.ProgressOf(ctx).Advance(done)
		close(h.started)
		select {
		case <-h.release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func onlyJob(t *testing.T, s *service.Service) ports.JobStatus {
	t.Helper()
	jobs := s.Jobs().Running
	if len(jobs) != 1 {
		t.Fatalf("Jobs() = %+v, want one job", jobs)
	}
	return jobs[0]
}

func TestJobsReportHeldCloneAndWipe(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100*mib)
	s := f.svc
	ctx := context.Background()
	h := f.startedPool(t, "p1", 1)
	src, err := s.VolCreateXML(ctx, h, rawVol("src", 10*mib), 0)
	must(t, err)
	if n := len(s.Jobs().Running); n != 0 {
		t.Fatalf("%d jobs after a finished build, want 0", n)
	}

	clone := newHeldJob()
	f.backend.BeforeBuildVol = clone.hook("copy", 4*mib)
	caller := ports.Caller{Server: "virtstoraged", ClientID: 7}
	errc := make(chan error, 1)
	go func() {
		_, err := s.VolCreateXMLFrom(ports.WithCaller(ctx, caller), h, testkit.VolXML(&domain.VolDef{Name: "copy"}), src, 0)
		errc <- err
	}()
	<-clone.started
	j := onlyJob(t, s)
	equal(t, "kind", j.Kind, domain.JobClone)
	equal(t, "pool", j.Pool, "p1")
	equal(t, "vol", j.Vol, "copy")
	equal(t, "caller", j.Caller, caller)
	equal(t, "has caller", j.HasCaller, true)
	equal(t, "done", j.Done, uint64(4*mib))
	equal(t, "total (the source's capacity)", j.Total, uint64(10*mib))
	equal(t, "running clones", s.Jobs().Totals[domain.JobClone].Running, 1)
	close(clone.release)
	must(t, <-errc)
	if n := len(s.Jobs().Running); n != 0 {
		t.Fatalf("%d jobs after the clone, want 0", n)
	}
	equal(t, "clone totals", s.Jobs().Totals[domain.JobClone], ports.JobTotals{Finished: 1, Bytes: 10 * mib})
	equal(t, "build totals", s.Jobs().Totals[domain.JobBuild], ports.JobTotals{Finished: 1, Bytes: 10 * mib})

	wipe := newHeldJob()
	f.backend.BeforeWipeVol = wipe.hook("src", 3*mib)
	go func() { errc <- s.VolWipe(ctx, src, 0, 0) }()
	<-wipe.started
	j = onlyJob(t, s)
	equal(t, "kind", j.Kind, domain.JobWipe)
	equal(t, "has caller", j.HasCaller, false)
	equal(t, "done", j.Done, uint64(3*mib))
	equal(t, "total", j.Total, uint64(10*mib))
	close(wipe.release)
	must(t, <-errc)
	equal(t, "wipe totals", s.Jobs().Totals[domain.JobWipe], ports.JobTotals{Finished: 1, Bytes: 10 * mib})
}

func TestJobsCountStreams(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100*mib)
	s := f.svc
	ctx := context.Background()
	h := f.startedPool(t, "p1", 1)
	vh, err := s.VolCreateXML(ctx, h, rawVol("v", 1000), 0)
	must(t, err)

	w, err := s.VolUpload(ctx, vh, 100, 0, 0)
	must(t, err)
	_, err = w.Write(make([]byte, 300))
	must(t, err)
	must(t, w.Hole(200))
	j := onlyJob(t, s)
	equal(t, "upload kind", j.Kind, domain.JobUpload)
	equal(t, "upload done", j.Done, uint64(500))
	equal(t, "upload total (offset to end)", j.Total, uint64(900))
	w.Abort()
	equal(t, "aborted upload", s.Jobs().Totals[domain.JobUpload], ports.JobTotals{Finished: 1, Failed: 1, Bytes: 500})

	w, err = s.VolUpload(ctx, vh, 0, 0, 0)
	must(t, err)
	_, err = w.Write(make([]byte, 1000))
	must(t, err)
	must(t, w.Finish(ctx))

	rd, err := s.VolDownload(ctx, vh, 0, 600, 0)
	must(t, err)
	buf := make([]byte, 250)
	n, _, err := rd.Next(buf)
	must(t, err)
	j = onlyJob(t, s)
	equal(t, "download kind", j.Kind, domain.JobDownload)
	equal(t, "download done", j.Done, uint64(n))
	equal(t, "download total (the length)", j.Total, uint64(600))
	for err == nil {
		_, _, err = rd.Next(buf)
	}
	if err != io.EOF {
		t.Fatalf("download ended with %v, want EOF", err)
	}
	must(t, rd.Close())
	equal(t, "download totals", s.Jobs().Totals[domain.JobDownload], ports.JobTotals{Finished: 1, Bytes: 600})

	rd, err = s.VolDownload(ctx, vh, 0, 0, 0)
	must(t, err)
	must(t, rd.Close())
	equal(t, "download closed before its end", s.Jobs().Totals[domain.JobDownload], ports.JobTotals{Finished: 2, Failed: 1, Bytes: 600})
	if n := len(s.Jobs().Running); n != 0 {
		t.Fatalf("%d jobs after the streams, want 0", n)
	}
}

// logSink hands the test every entry with a given message.
type logSink struct {
	msg     string
	entries chan logrus.Fields
}

func (l *logSink) Levels() []logrus.Level { return logrus.AllLevels }

func (l *logSink) Fire(e *logrus.Entry) error {
	if e.Message == l.msg && e.Level == logrus.InfoLevel {
		select {
		case l.entries <- e.Data:
		default: // the test looks at the first few only
		}
	}
	return nil
}

func TestLongJobLogsItsProgress(t *testing.T) {
	t.Parallel()
	sink := &logSink{msg: "volume job in progress", entries: make(chan logrus.Fields, 4)}
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.AddHook(sink)
	f := &fixture{backend: testkit.NewMemoryBackend(100 * mib), store: testkit.NewMemoryStore(), sink: &testkit.RecordingSink{}}
	// A millisecond interval so that the held job logs at once; what the
	// line says is the same at any interval.
	s, err := service.New(service.Config{ProgressLogInterval: time.Millisecond}, []ports.PoolBackend{f.backend},
		testkit.FakeCodec{}, f.store, f.sink, logrus.NewEntry(l))
	must(t, err)
	must(t, s.Start(context.Background()))
	f.svc = s
	ctx := context.Background()
	h := f.startedPool(t, "p1", 1)
	build := newHeldJob()
	f.backend.BeforeBuildVol = build.hook("big", 5*mib)
	errc := make(chan error, 1)
	go func() {
		_, err := s.VolCreateXML(ctx, h, rawVol("big", 20*mib), 0)
		errc <- err
	}()
	<-build.started
	// Two lines: the timer re-arms after the first.
	for i := range 2 {
		select {
		case fields := <-sink.entries:
			equal(t, "pool", fields["pool"], any("p1"))
			equal(t, "vol", fields["vol"], any("big"))
			equal(t, "job", fields["job"], any("build"))
			equal(t, "bytes_done", fields["bytes_done"], any(uint64(5*mib)))
			equal(t, "bytes_total", fields["bytes_total"], any(uint64(20*mib)))
			equal(t, "percent", fields["percent"], any(uint64(25)))
		case err := <-errc:
			t.Fatalf("build ended before progress line %d: %v", i+1, err)
		case <-time.After(30 * time.Second):
			// A 1 ms timer fires within milliseconds; 30 s only guards
			// against a hang on a loaded machine.
			t.Fatalf("no progress line %d within 30 s", i+1)
		}
	}
	close(build.release)
	must(t, <-errc)
}

func TestPoolsMatchPoolInfo(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100*mib)
	s := f.svc
	ctx := context.Background()
	h := f.startedPool(t, "p2", 2)
	_, err := s.VolCreateXML(ctx, h, rawVol("a", 3*mib), 0)
	must(t, err)
	_, err = s.VolCreateXML(ctx, h, rawVol("b", 5*mib), 0)
	must(t, err)
	idle, err := s.PoolDefineXML(ctx, testkit.PoolXML(dirDef("p1", 1)), 0)
	must(t, err)

	pools := s.Pools()
	if len(pools) != 2 || pools[0].Name != "p1" || pools[1].Name != "p2" {
		t.Fatalf("Pools() = %+v, want p1 then p2", pools)
	}
	for i, ph := range []domain.PoolHandle{idle, h} {
		info, err := s.PoolGetInfo(ctx, ph)
		must(t, err)
		got := pools[i]
		equal(t, ph.Name+" state", got.State, info.State)
		equal(t, ph.Name+" capacity", got.Capacity, info.Capacity)
		equal(t, ph.Name+" allocation", got.Allocation, info.Allocation)
		equal(t, ph.Name+" available", got.Available, info.Available)
		equal(t, ph.Name+" uuid", got.UUID, ph.UUID)
		equal(t, ph.Name+" type", got.Type, domain.PoolDir)
	}
	equal(t, "inactive volumes", pools[0].Volumes, 0)
	n, err := s.PoolNumOfVolumes(ctx, h)
	must(t, err)
	equal(t, "volumes", pools[1].Volumes, n)
	equal(t, "volumes created", n, 2)
}

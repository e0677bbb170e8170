package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress draws a one-line progress bar (steps done, elapsed time, current step) and
// is an io.Writer that prints log lines above it. All methods are safe on a nil
// *Progress, which draws nothing.
type Progress struct {
	w     io.Writer
	width int

	mu          sync.Mutex
	total, done int
	step        string
	detail      string
	start       time.Time
	drawn       bool
	stop        chan struct{}
	wg          sync.WaitGroup
}

// NewProgress draws on w, which should be a terminal.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, width: 30}
}

// Start begins a bar of total steps and redraws it every 200 ms, so that elapsed
// time moves during a long step.
func (p *Progress) Start(total int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.total, p.done, p.start, p.stop = total, 0, time.Now(), make(chan struct{})
	p.mu.Unlock()
	p.wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			}
		}
	})
}

// Step names the step now running.
func (p *Progress) Step(s string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.step, p.detail = s, ""
	p.draw()
	p.mu.Unlock()
}

// Detail says what the current step is doing.
func (p *Progress) Detail(s string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.detail = s
	p.draw()
	p.mu.Unlock()
}

// Done counts the current step as finished.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.done++
	p.draw()
	p.mu.Unlock()
}

// Finish stops redrawing and erases the bar.
func (p *Progress) Finish() {
	if p == nil || p.stop == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	p.clear()
	p.stop = nil
	p.mu.Unlock()
}

// Write prints b (log lines) above the bar.
func (p *Progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	n, err := p.w.Write(b)
	if p.stop != nil {
		p.draw()
	}
	return n, err
}

// Line renders the bar for done of total steps.
func (p *Progress) Line(done, total int, elapsed time.Duration, step string) string {
	fill := 0
	if total > 0 {
		fill = min(p.width, done*p.width/total)
	}
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", p.width-fill)
	if fill > 0 && fill < p.width {
		bar = bar[:fill-1] + ">" + bar[fill:]
	}
	el := elapsed.Truncate(time.Second)
	return fmt.Sprintf("[%s] %d/%d %s %s", bar, done, total, el, step)
}

func (p *Progress) draw() {
	if p.total == 0 {
		return
	}
	step := p.step
	if p.detail != "" {
		step += ": " + p.detail
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", p.Line(p.done, p.total, time.Since(p.start), step))
	p.drawn = true
}

func (p *Progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

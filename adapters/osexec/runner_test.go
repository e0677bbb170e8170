package osexec_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/virtstoraged-go/virtstoraged/adapters/osexec"
	"github.com/virtstoraged-go/virtstoraged/ports"
)

func newRunner(t *testing.T) (*osexec.Runner, *test.Hook) {
	t.Helper()
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	return osexec.New(logrus.NewEntry(logger)), hook
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		giveCmd    ports.Command
		wantStdout string
		wantCode   int
		wantStderr string
		wantErr    bool
	}{
		{name: "true", giveCmd: ports.Command{Path: "/bin/true"}},
		{name: "false", giveCmd: ports.Command{Path: "/bin/false"}, wantErr: true, wantCode: 1},
		{
			name:       "stdout and LC_ALL",
			giveCmd:    ports.Command{Path: "testdata/echo-both.sh", Args: []string{"a", "b c"}, Env: []string{"LC_ALL=de_DE.UTF-8"}},
			wantStdout: "out:a b c\nlc:C\n",
		},
		{
			name:       "exit code and stderr kept",
			giveCmd:    ports.Command{Path: "testdata/echo-both.sh", Env: []string{"EXIT=32"}},
			wantStdout: "out:\nlc:C\n",
			wantErr:    true, wantCode: 32, wantStderr: "err:boom\n",
		},
		{
			name:       "stdin",
			giveCmd:    ports.Command{Path: "testdata/stdin.sh", Stdin: []byte("hello")},
			wantStdout: "hello",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _ := newRunner(t)
			out, err := r.Run(context.Background(), tt.giveCmd)
			if string(out) != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", out, tt.wantStdout)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			var xe *ports.ExitError
			if !errors.As(err, &xe) {
				t.Fatalf("err %T is not *ExitError", err)
			}
			if xe.ExitStatus() != tt.wantCode {
				t.Errorf("code = %d, want %d", xe.ExitStatus(), tt.wantCode)
			}
			if xe.Stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", xe.Stderr, tt.wantStderr)
			}
			if xe.Argv[0] != tt.giveCmd.Path {
				t.Errorf("argv = %q", xe.Argv)
			}
			if code, ok := ports.ExitStatus(err); !ok || code != tt.wantCode {
				t.Errorf("ExitCode() = %d, %v", code, ok)
			}
		})
	}
}

func TestRunMissingProgram(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	_, err := r.Run(context.Background(), ports.Command{Path: "no-such-program-virtstoraged"})
	if !errors.Is(err, ports.ErrCommandNotFound) {
		t.Fatalf("err = %v, want ports.ErrCommandNotFound", err)
	}
	if _, ok := ports.ExitStatus(err); ok {
		t.Error("a command that never started has no exit code")
	}
}

func TestRunLogsArgv(t *testing.T) {
	t.Parallel()
	r, hook := newRunner(t)
	if _, err := r.Run(context.Background(), ports.Command{Path: "/bin/true", Args: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	e := hook.LastEntry()
	if e == nil || e.Level != logrus.DebugLevel {
		t.Fatalf("no debug entry logged: %v", e)
	}
	argv, ok := e.Data["argv"].([]string)
	if !ok || strings.Join(argv, " ") != "/bin/true x" {
		t.Errorf("argv field = %#v", e.Data["argv"])
	}
}

func TestRunCancelKillsChild(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, ports.Command{Path: "testdata/sleep.sh"})
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Run took %v after cancellation", time.Since(start))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want it to wrap the context error", err)
	}
	if code, ok := ports.ExitStatus(err); !ok || code != -1 {
		t.Errorf("ExitCode = %d, %v; want -1 (killed)", code, ok)
	}
}

func TestRunChildHoldingPipes(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	r.WaitDelay = 200 * time.Millisecond
	start := time.Now()
	out, err := r.Run(context.Background(), ports.Command{Path: "testdata/leak.sh"})
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if string(out) != "done\n" {
		t.Errorf("stdout = %q", out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run waited %v for a grandchild holding the pipe", d)
	}
}

func TestExitErrorText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give *ports.ExitError
		want string
	}{
		{
			name: "with stderr",
			give: &ports.ExitError{Argv: []string{"qemu-img", "create", "x"}, Code: 1, Stderr: "qemu-img: x: bad\n"},
			want: "osexec: qemu-img create x: exit status 1: qemu-img: x: bad",
		},
		{name: "silent", give: &ports.ExitError{Argv: []string{"false"}, Code: 1}, want: "osexec: false: exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.give.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// A streamed command reads its stdin from a pipe and writes its stdout to
// another as it runs, rather than through buffers held whole.
func TestRunStreams(t *testing.T) {
	t.Parallel()
	r, _ := newRunner(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		out, err := r.Run(context.Background(), ports.Command{Path: "tr", Args: []string{"a-z", "A-Z"}, StdinStream: inR, StdoutStream: outW})
		if len(out) != 0 {
			err = errors.Join(err, fmt.Errorf("Run returned output %q with a stdout stream", out))
		}
		inR.Close()
		outW.Close()
		done <- err
	}()
	if _, err := io.WriteString(inW, "streamed data"); err != nil {
		t.Fatal(err)
	}
	inW.Close()
	got, err := io.ReadAll(outR)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(got) != "STREAMED DATA" {
		t.Errorf("stdout %q", got)
	}
}

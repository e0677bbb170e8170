package metrics

import (
	"context"
	"errors"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
)

// Bounds of the metrics endpoint. A scrape copies the daemon's figures and
// then writes them out; these bounds keep what a slow, stuck or hostile
// scraper can tie up to a few goroutines and connections of its own.
const (
	// maxScrapes is how many scrapes run at once; more are answered 503.
	maxScrapes = 4
	// scrapeTimeout bounds the gathering of one scrape (it takes
	// milliseconds even with thousands of pools).
	scrapeTimeout = 10 * time.Second
	// readHeaderTimeout drops a connection that does not send its request.
	readHeaderTimeout = 5 * time.Second
	// writeTimeout drops a scraper that does not read its answer.
	writeTimeout = 30 * time.Second
	// idleTimeout closes kept-alive connections between scrapes.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes is plenty for a GET /metrics.
	maxHeaderBytes = 8 << 10
)

// MetricsPath is where the metrics are served.
const MetricsPath = "/metrics"

// Handler serves the metrics at MetricsPath, to GET and HEAD only.
func (m *Metrics) Handler(log *logrus.Entry) http.Handler {
	prom := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            log,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             scrapeTimeout,
	})
	mux := http.NewServeMux()
	mux.HandleFunc(MetricsPath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "metrics are read-only", http.StatusMethodNotAllowed)
			return
		}
		prom.ServeHTTP(w, r)
	})
	return mux
}

// Server serves the metrics on listeners until Shutdown.
type Server struct {
	http   *http.Server
	errlog io.Closer
}

// NewServer returns a server of m's metrics, logging to log.
func (m *Metrics) NewServer(log *logrus.Entry) *Server {
	// net/http reports broken connections through the standard logger;
	// they go to the daemon's log, at debug level, instead of stderr.
	w := log.WriterLevel(logrus.DebugLevel)
	return &Server{errlog: w, http: &http.Server{
		Handler:           m.Handler(log),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          stdlog.New(w, "metrics: ", 0),
	}}
}

// Serve serves ln until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown closes the listeners and waits for running scrapes until ctx
// ends, then cuts them.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	_ = s.errlog.Close()
	return err
}

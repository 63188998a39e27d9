package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Binary finds the prometheus server: $HELM_CANARY_PROMETHEUS, or prometheus on
// PATH (Debian's package; `make testbin` installs it).
func Binary() (string, error) {
	if p := os.Getenv("HELM_CANARY_PROMETHEUS"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p, nil
	}
	return "", errors.New("no prometheus binary: run `make testbin` (it installs Debian's prometheus package) or set HELM_CANARY_PROMETHEUS")
}

// Server is a running Prometheus.
type Server struct {
	// URL is its HTTP API's base, http://127.0.0.1:PORT.
	URL string
	cmd *exec.Cmd
	out bytes.Buffer
	dir string
}

// ScrapeInterval is how often the server scrapes its targets.
const ScrapeInterval = time.Second

// Start runs Prometheus in a fresh temporary directory, scraping the given
// host:port targets every ScrapeInterval, and waits until it is ready.
func Start(ctx context.Context, targets ...string) (*Server, error) {
	return StartOn(ctx, "127.0.0.1", targets...)
}

// StartOn is Start with the server listening on host (an address of this machine).
func StartOn(ctx context.Context, host string, targets ...string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "helm-canary-prometheus-")
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: %s\n  evaluation_interval: %s\nscrape_configs:\n- job_name: istio\n  static_configs:\n  - targets: [%s]\n",
		ScrapeInterval, ScrapeInterval, quoteList(targets))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort(host)
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + port, dir: dir}
	s.cmd = exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+port, "--log.level=warn")
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	orphanProof(s.cmd)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("prometheus not ready after 30s: %s", s.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the server and removes its data.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	os.RemoveAll(s.dir)
}

func quoteList(l []string) string {
	var b bytes.Buffer
	for i, t := range l {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", t)
	}
	return b.String()
}

func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitForWindow waits until every series has been scraped through a whole
// window (Prometheus starts scraping a few seconds after it is ready), so that
// rates over that window are measured, not extrapolated from a few samples.
func (s *Server) WaitForWindow(ctx context.Context, window time.Duration) error {
	want := int(window/ScrapeInterval) + 1
	q := fmt.Sprintf("min(count_over_time(istio_requests_total[%ds]))", int((window+ScrapeInterval)/time.Second))
	deadline := time.Now().Add(window + 30*time.Second)
	for {
		resp, err := http.Get(s.URL + "/api/v1/query?query=" + url.QueryEscape(q))
		if err == nil {
			var r struct {
				Data struct {
					Result []struct {
						Value []any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err == nil && len(r.Data.Result) == 1 && len(r.Data.Result[0].Value) == 2 {
				if n, err := strconv.Atoi(fmt.Sprint(r.Data.Result[0].Value[1])); err == nil && n >= want {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus has not scraped a %s window of samples after %s", window, window+30*time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ecsproject/ecsd/internal/aksk"
)

// creds signs requests for one project.
type creds struct {
	endpoint  string // http://127.0.0.1:port
	accessKey string
	secretKey string
	projectID string
	userID    string
}

// userAgent is sent (and signed) with every request.
const userAgent = "ecsd-bench/1"

// signedRequest builds a request the way the client package sends it: JSON
// body, User-Agent and X-Project-Id signed, SDK-HMAC-SHA256 Authorization.
func signedRequest(ctx context.Context, c *creds, method, path string, body []byte) (*http.Request, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("X-Project-Id", c.projectID)
	if body != nil {
		req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	aksk.Sign(req, body, c.accessKey, c.secretKey, time.Now())
	return req, nil
}

// newTransport returns a keep-alive HTTP/1.1 client holding up to conns
// connections to one host.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// request is one request of a load run.
type request struct {
	method string
	path   string
	body   []byte
}

// load is a closed-loop load run: workers each send one request at a time
// on their own keep-alive connection, until total requests were sent or
// the duration has passed, whichever comes first (0 means no limit; one of
// them must be set).
type load struct {
	name     string
	workers  int
	total    int
	duration time.Duration
	// next returns the i-th request (i counts from 0 across workers).
	next func(i int) request
	// onOK, when set, gets each 2xx body (called from the workers).
	onOK func(i int, body []byte)
	// serverPID, when non-zero, is the process whose CPU time is reported.
	serverPID int
	// endpoints, when set, spread the workers over several nodes: worker w
	// sends to endpoints[w%len(endpoints)] (else to the creds' endpoint);
	// serverPIDs then adds up the CPU time of every node.
	endpoints  []string
	serverPIDs []int
	// dbCPU, when set, reads the CPU time the database server has used
	// (PostgreSQL: its postmaster and backends), reported apart.
	dbCPU func() time.Duration
}

// loadResult is what a load run measured.
type loadResult struct {
	n, ok     int
	elapsed   time.Duration
	lat       []time.Duration // sorted
	statuses  map[int]int     // non-2xx status -> count (0: transport error)
	firstErr  string
	serverCPU time.Duration
	dbCPU     time.Duration // -1 when not measured
	clientCPU time.Duration
	// otherCPU is the CPU that processes other than the client and server
	// spent during the run (other users of the machine).
	otherCPU time.Duration
}

// otherShare is otherCPU as a share of the machine's CPUs over the run.
func (r loadResult) otherShare() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return max(0, float64(r.otherCPU)/float64(r.elapsed)/float64(runtime.NumCPU()))
}

// rate is successful requests per second.
func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// pct returns the p-th percentile latency (nearest rank; 100 is the max).
func (r loadResult) pct(p float64) time.Duration { return percentile(r.lat, p) }

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(float64(len(sorted))*p/100 + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// errSummary describes the failed requests of a run, "" when none failed.
func (r loadResult) errSummary() string {
	if r.ok == r.n {
		return ""
	}
	return fmt.Sprintf("%d of %d requests failed (%v), first: %s", r.n-r.ok, r.n, r.statuses, r.firstErr)
}

// run performs the load run against c with hc.
func (l load) run(ctx context.Context, c *creds, hc *http.Client) (loadResult, error) {
	if l.total <= 0 && l.duration <= 0 {
		return loadResult{}, fmt.Errorf("load %s: no total and no duration", l.name)
	}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		res      = loadResult{statuses: map[int]int{}}
		wg       sync.WaitGroup
		deadline time.Time
	)
	pids := append([]int{l.serverPID}, l.serverPIDs...)
	cpu0, err := processesCPU(pids)
	if err != nil {
		return res, err
	}
	self0, busy0 := selfCPU(), machineBusy()
	var db0 time.Duration
	if l.dbCPU != nil {
		db0 = l.dbCPU()
	}
	start := time.Now()
	if l.duration > 0 {
		deadline = start.Add(l.duration)
	}
	for w := range l.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := c
			if len(l.endpoints) > 0 {
				own := *c
				own.endpoint = l.endpoints[w%len(l.endpoints)]
				c = &own
			}
			lat := make([]time.Duration, 0, 1024)
			statuses := map[int]int{}
			var firstErr string
			buf := make([]byte, 0, 4096)
			ok := 0
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if l.total > 0 && i >= l.total {
					break
				}
				if l.duration > 0 && time.Now().After(deadline) {
					break
				}
				rq := l.next(i)
				req, err := signedRequest(ctx, c, rq.method, rq.path, rq.body)
				if err != nil {
					statuses[0]++
					firstErr = err.Error()
					continue
				}
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					lat = append(lat, time.Since(t0))
					statuses[0]++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				buf, err = readAll(resp.Body, buf[:0])
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				switch {
				case err != nil:
					statuses[0]++
					if firstErr == "" {
						firstErr = err.Error()
					}
				case resp.StatusCode/100 != 2:
					statuses[resp.StatusCode]++
					if firstErr == "" {
						firstErr = fmt.Sprintf("HTTP %d %s", resp.StatusCode, truncate(buf, 300))
					}
				default:
					ok++
					if l.onOK != nil {
						l.onOK(i, buf)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, lat...)
			res.ok += ok
			for k, v := range statuses {
				res.statuses[k] += v
			}
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.clientCPU = selfCPU() - self0
	cpu1, err := processesCPU(pids)
	if err != nil {
		return res, err
	}
	res.serverCPU = cpu1 - cpu0
	res.otherCPU = machineBusy() - busy0 - res.serverCPU - res.clientCPU
	res.dbCPU = -1
	if l.dbCPU != nil {
		res.dbCPU = l.dbCPU() - db0
		res.otherCPU -= res.dbCPU
	}
	res.n = len(res.lat)
	slices.Sort(res.lat)
	return res, ctx.Err()
}

// processesCPU adds up processCPU of pids.
func processesCPU(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		t, err := processCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += t
	}
	return sum, nil
}

// readAll appends r's content to buf.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// warm opens conns keep-alive connections to endpoint with /healthz calls.
func warm(ctx context.Context, endpoint string, hc *http.Client, conns int) error {
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/healthz", nil)
				resp, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// selfCPU is the user+system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecsproject/ecsd/internal/testd"
)

// machine describes where the benchmark ran.
type machine struct {
	host, model, ram, kernel, goVersion, loadStart string
	cpus                                           int
	otherShare                                     float64 // CPU share used by other processes during the run
	source                                         string  // what was measured (sourceVersion)
}

func machineInfo() machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version(), loadStart: loadAvg()}
	m.host, _ = os.Hostname()
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, ok := statusKB(string(b), "MemTotal"); ok {
			m.ram = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// statusKB returns the value in kB of a "Name:   123 kB" line of a /proc
// status or meminfo text.
func statusKB(text, name string) (int64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		return n, err == nil
	}
	return 0, false
}

// memory returns the VmRSS and VmHWM (peak RSS) of process pid, in bytes.
func memory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	r, ok1 := statusKB(string(b), "VmRSS")
	p, ok2 := statusKB(string(b), "VmHWM")
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS/VmHWM", pid)
	}
	return r << 10, p << 10, nil
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
const clockTick = 100

// processCPU returns the user+system CPU time of process pid (0 for pid 0).
func processCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime+stime from a /proc/<pid>/stat line. The command
// name (field 2) may hold spaces, so fields are counted after its ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat")
	}
	return time.Duration(u+s) * time.Second / clockTick, nil
}

// machineBusy is the CPU time all processes have spent (user, nice,
// system, irq, softirq, steal) according to /proc/stat; 0 if unreadable.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTick
}

// childrenCPU is the CPU time of this process's waited-for children.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sourceVersion names the commit the benchmark runs from and whether the
// product's files (outside bench/ and docs/) have uncommitted changes.
func sourceVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "an unknown commit"
	}
	v := "commit " + strings.TrimSpace(string(out))
	out, err = exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!docs").Output()
	if err == nil && len(strings.TrimSpace(string(out))) > 0 {
		v += fmt.Sprintf(" with uncommitted changes in %d files", len(strings.Split(strings.TrimSpace(string(out)), "\n")))
	}
	return v
}

// daemon is a running ecsd (see internal/testd) and the credential the
// load generators sign with.
type daemon struct {
	*testd.Daemon
	creds creds
}

// startDaemon starts bin serving dataDir on a free loopback port with the
// given extra flags, logging into workDir, and waits until /healthz answers
// and credentials.json names its endpoint.
func startDaemon(bin, dataDir, workDir string, extra ...string) (*daemon, error) {
	td, err := testd.New(testd.Config{Bin: bin, DataDir: dataDir, WorkDir: workDir})
	if err != nil {
		return nil, err
	}
	d := &daemon{Daemon: td}
	return d, d.start(extra...)
}

// start starts ecsd again on the same data dir and port with extra flags.
func (d *daemon) start(extra ...string) error {
	if err := d.Start(extra...); err != nil {
		return err
	}
	c := d.Credentials()
	d.creds = creds{endpoint: d.Endpoint(), accessKey: c.AccessKey, secretKey: c.SecretKey, projectID: c.ProjectID, userID: c.UserID}
	return nil
}

// close stops ecsd if it runs.
func (d *daemon) close() {
	if d.Running() {
		d.Stop()
	}
}

// startupTime is how long the last start took until /healthz answered.
func (d *daemon) startupTime() time.Duration { return d.Ready().Sub(d.Started()) }

// noopEnv, when set in the environment, makes this binary serve the no-op
// handler on the address it holds instead of benchmarking.
const noopEnv = "ECSD_BENCH_NOOP_LISTEN"

// noopBody is the no-op handler's answer, shaped like a submit answer.
var noopBody = []byte(`{"job_id":"ff80808288d41e1b018a6a6f8a3b0f7c"}`)

// serveNoop serves the no-op handler: it reads the body and answers 200
// with a fixed small JSON body and an X-Request-Id header, doing no
// authentication, routing or logging. It is the ceiling: the same server
// setup as ecsd (net/http, same timeouts) minus the product.
func serveNoop(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Request-Id", "00000000000000000000000000000000")
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(noopBody)))
		w.Write(noopBody)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	return srv.Serve(ln)
}

// noopServer is the no-op handler running in a child process.
type noopServer struct {
	cmd      *exec.Cmd
	endpoint string
}

// startNoop re-runs this binary as the no-op server.
func startNoop() (*noopServer, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), noopEnv+"=127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("no-op server: %w", err)
	}
	return &noopServer{cmd: cmd, endpoint: "http://" + strings.TrimSpace(line)}, nil
}

func (n *noopServer) pid() int { return n.cmd.Process.Pid }

func (n *noopServer) close() {
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// peer describes how to start one of the peer servers in bench/servers.
type peer struct {
	name string
	// singleThreaded: the server runs its handlers on one event loop, so
	// one core is its ceiling.
	singleThreaded bool
	cmd            func(root, bin string, deflate bool) (*exec.Cmd, error)
}

var peers = map[string]peer{
	"wsactor":    {name: "wsactor", cmd: goPeer("wsactor")},
	"gorillahub": {name: "gorillahub", cmd: goPeer("gorillahub")},
	// wsactor-metrics is the wsactor server with its Prometheus collectors
	// registered and gathered every second: against "wsactor" in one
	// interleaved run it is what metrics cost (bench/run.sh metrics).
	"wsactor-metrics": {name: "wsactor-metrics", cmd: withArgs(goPeer("wsactor"), "-metrics")},
	// goecho and goecho-epoll are floors for the echo scenarios, not peers:
	// the least a Go server does per round trip through Go's netpoller, and
	// through an epoll event loop of its own (bench/servers/goecho).
	"goecho":       {name: "goecho", cmd: withArgs(goPeer("goecho"), "-mode", "netpoll")},
	"goecho-epoll": {name: "goecho-epoll", cmd: withArgs(goPeer("goecho"), "-mode", "epoll")},
	// goecho-transport is wsactor's transport package alone (no actors, no
	// rooms) in the same echo, to tell the frame layer's cost from the rest.
	"goecho-transport": {name: "goecho-transport", cmd: withArgs(goPeer("goecho"), "-mode", "transport")},
	"node": {name: "node", singleThreaded: true, cmd: func(root, _ string, deflate bool) (*exec.Cmd, error) {
		dir := filepath.Join(root, "bench", "servers", "node")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
			return nil, fmt.Errorf("node peer: run `npm ci --prefix %s` first", dir)
		}
		node, err := exec.LookPath("node")
		if err != nil {
			return nil, err
		}
		args := []string{"server.js", "--port", "0"}
		if deflate {
			args = append(args, "--deflate")
		}
		c := exec.Command(node, args...)
		c.Dir = dir
		return c, nil
	}},
	"bun": {name: "bun", singleThreaded: true, cmd: func(root, _ string, deflate bool) (*exec.Cmd, error) {
		dir := filepath.Join(root, "bench", "servers", "bun")
		bun := filepath.Join(dir, "node_modules", "bun", "bin", "bun.exe")
		if _, err := os.Stat(bun); err != nil {
			return nil, fmt.Errorf("bun peer: run `npm ci --prefix %s` first", dir)
		}
		args := []string{"server.js", "--port", "0"}
		if deflate {
			args = append(args, "--deflate")
		}
		c := exec.Command(bun, args...)
		c.Dir = dir
		return c, nil
	}},
}

// goPeer runs bench/servers/NAME, built into bin (and built there first if
// it is missing).
func goPeer(name string) func(root, bin string, deflate bool) (*exec.Cmd, error) {
	return func(root, bin string, deflate bool) (*exec.Cmd, error) {
		exe := filepath.Join(bin, name)
		if _, err := os.Stat(exe); err != nil {
			build := exec.Command("go", "build", "-o", exe, "./bench/servers/"+name)
			build.Dir = root
			build.Stderr = os.Stderr
			if err := build.Run(); err != nil {
				return nil, fmt.Errorf("building %s: %w", name, err)
			}
		}
		args := []string{"-port", "0"}
		if deflate {
			args = append(args, "-deflate")
		}
		return exec.Command(exe, args...), nil
	}
}

// withArgs runs what start runs, with args added.
func withArgs(start func(root, bin string, deflate bool) (*exec.Cmd, error), args ...string) func(root, bin string, deflate bool) (*exec.Cmd, error) {
	return func(root, bin string, deflate bool) (*exec.Cmd, error) {
		c, err := start(root, bin, deflate)
		if err != nil {
			return nil, err
		}
		c.Args = append(c.Args, args...)
		return c, nil
	}
}

// server is a running peer server.
type server struct {
	name string
	cmd  *exec.Cmd
	pid  int
	addr string
	log  *bytes.Buffer
	done chan struct{}
}

// startServer starts cmd and waits for its "listening ADDR" line.
func startServer(name string, cmd *exec.Cmd, extraArgs []string) (*server, error) {
	cmd.Args = append(cmd.Args, extraArgs...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, cmd: cmd, log: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = &limitedWriter{w: s.log, n: 64 << 10}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.pid = cmd.Process.Pid
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if !found {
				if a, ok := strings.CutPrefix(line, "listening "); ok {
					found = true
					addr <- strings.TrimSpace(a)
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	select {
	case a := <-addr:
		s.addr = a
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%s exited before listening: %s", name, strings.TrimSpace(s.log.String()))
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s did not print its address within 30s", name)
	}
}

func (s *server) stop() {
	_ = syscall.Kill(s.pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		_ = syscall.Kill(s.pid, syscall.SIGKILL)
		<-s.done
	}
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	q := p
	if len(q) > l.n {
		q = q[:l.n]
	}
	l.n -= len(q)
	_, _ = l.w.Write(q)
	return len(p), nil
}

// rssKB returns VmRSS of pid in KiB.
func rssKB(pid int) (int64, error) {
	return statusField(pid, "VmRSS:")
}

// hwmKB returns VmHWM (peak RSS) of pid in KiB.
func hwmKB(pid int) (int64, error) {
	return statusField(pid, "VmHWM:")
}

func statusField(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

// clkTck is USER_HZ; 100 on Linux for every architecture Go supports here.
const clkTck = 100

// procCPU returns utime+stime of pid (all its threads) as a duration.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ")": state is field 3; utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// machineCPU returns the busy and total CPU time of the whole machine, in
// clock ticks summed over all CPUs, from /proc/stat.
func machineCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseNoFile raises RLIMIT_NOFILE's soft limit to its hard limit (and tries
// to raise both to want, which needs CAP_SYS_RESOURCE). It returns the soft
// limit in force afterwards.
func raiseNoFile(want uint64) (soft, hard uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0
	}
	if want > rl.Max {
		try := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try) == nil {
			return want, want
		}
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur, rl.Max
}

// findRoot returns the module root (the directory with wsactor's go.mod)
// at or above the working directory.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/wsactor/wsactor")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run wsbench inside the wsactor repository (or pass -url)")
		}
		dir = parent
	}
}

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is the kernel's USER_HZ, which /proc/<pid>/stat counts in;
// 100 on every Linux architecture Go runs on.
const clockTicks = 100

// procStat is one process's line of /proc/<pid>/stat, the fields we read.
type procStat struct {
	pid, ppid int
	// self is utime+stime; children is cutime+cstime (children it reaped).
	self, children float64
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// The command name may hold spaces and parentheses: the fields start
	// after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, so f[11].
	if len(f) < 15 {
		return procStat{}, false
	}
	n := func(k int) float64 { v, _ := strconv.ParseFloat(f[k], 64); return v / clockTicks }
	ppid, _ := strconv.Atoi(f[1])
	return procStat{pid: pid, ppid: ppid, self: n(11) + n(12), children: n(13) + n(14)}, true
}

// allStats reads every process of the machine once.
func allStats() map[int]procStat {
	ents, _ := os.ReadDir("/proc")
	m := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := readStat(pid); ok {
			m[pid] = s
		}
	}
	return m
}

// treeCPU is the CPU seconds a process tree has used so far: the root's own
// time, what its reaped children used (cutime+cstime: Dovecot's imap
// processes that ended, PostgreSQL's backends that ended) and what its live
// descendants used. A child that ends between two readings moves from the
// live sum to the parent's cutime, so the difference of two readings is the
// tree's CPU in between.
func treeCPU(root int) float64 {
	if root <= 0 {
		return 0
	}
	all := allStats()
	kids := map[int][]int{}
	for pid, s := range all {
		kids[s.ppid] = append(kids[s.ppid], pid)
	}
	var sum func(pid int) float64
	sum = func(pid int) float64 {
		s, ok := all[pid]
		if !ok {
			return 0
		}
		t := s.self + s.children
		for _, k := range kids[pid] {
			t += sum(k)
		}
		return t
	}
	return sum(root)
}

// findPID returns the first process whose command line holds every one of
// parts (0 when none).
func findPID(parts ...string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cl := strings.ReplaceAll(string(b), "\x00", " ")
		ok := true
		for _, p := range parts {
			if !strings.Contains(cl, p) {
				ok = false
				break
			}
		}
		if ok {
			return pid
		}
	}
	return 0
}

// connCounter polls the kernel's socket tables and keeps, per listening
// port, the peak number of established connections whose local end is that
// port: the server's side of each connection, as the server sees it (one
// socket per client connection; Dovecot hands it from imap-login to imap
// without a second socket).
type connCounter struct {
	ports []int
	mu    sync.Mutex
	peak  map[int]int
	stop  chan struct{}
	done  chan struct{}
}

func newConnCounter(every time.Duration, ports ...int) *connCounter {
	c := &connCounter{ports: ports, peak: map[int]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			c.poll()
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
		}
	}()
	return c
}

func (c *connCounter) poll() {
	// The kernel writes these tables a page per read: a socket opened or
	// closed between two reads can shift the rest and list a socket twice.
	// Each socket counts once (by its inode).
	seen := map[string]bool{}
	now := map[int]int{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			// sl local_address rem_address st ...; state 01 is ESTABLISHED.
			if len(fl) < 10 || fl[3] != "01" || seen[fl[9]] {
				continue
			}
			seen[fl[9]] = true
			_, hexPort, ok := strings.Cut(fl[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil {
				continue
			}
			now[int(p)]++
		}
		fh.Close()
	}
	c.mu.Lock()
	for _, p := range c.ports {
		c.peak[p] = max(c.peak[p], now[p])
	}
	c.mu.Unlock()
}

// Reset starts a new peak.
func (c *connCounter) Reset() {
	c.mu.Lock()
	c.peak = map[int]int{}
	c.mu.Unlock()
}

// Peak is the highest count seen on port since the last Reset.
func (c *connCounter) Peak(port int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak[port]
}

func (c *connCounter) Close() {
	close(c.stop)
	<-c.done
}

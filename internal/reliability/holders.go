package reliability

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// connectedTo tells whether process pid holds an open TCP connection to
// one of ports on this host: a worker doing so is copying, under the
// leases its migrations hold.
func connectedTo(pid int, ports map[int]bool) bool {
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false
	}
	for _, fd := range fds {
		l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "01" || !inodes[fl[9]] { // 01: ESTABLISHED
				continue
			}
			i := strings.LastIndexByte(fl[2], ':')
			if port, err := strconv.ParseInt(fl[2][i+1:], 16, 32); err == nil && ports[int(port)] {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}

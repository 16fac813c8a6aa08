package testenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
)

// Ports handed to another process (Dovecot, BIND9, PostgreSQL, the Temporal
// dev server) are picked below the kernel's ephemeral range (32768-60999 on
// Linux): a port the kernel picked for ":0" and then closed is the next one
// it gives to an outgoing connection or to another test binary, which is how
// two parallel test packages ended up on the same port. A port here is free
// for TCP and UDP on 127.0.0.1 when picked, and never picked twice by one
// process.
const portLow, portHigh = 20000, 32000

var picked = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// PickPort returns a port that is free for TCP and UDP on 127.0.0.1.
func PickPort() (int, error) {
	picked.Lock()
	defer picked.Unlock()
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow)
		if picked.m[p] || !portFree(p) {
			continue
		}
		picked.m[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port between %d and %d after 200 tries", portLow, portHigh)
}

// MustPickPort is PickPort for callers that cannot go on without one.
func MustPickPort() int {
	p, err := PickPort()
	if err != nil {
		panic(err)
	}
	return p
}

func portFree(p int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

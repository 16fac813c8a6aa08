package reliability

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"time"
)

// answerUnavailable speaks just enough IMAP to be a server that cannot
// take a session now, the way Dovecot answers when its authentication is
// overloaded: a greeting, CAPABILITY and LOGOUT answered, LOGIN and
// everything else refused with NO [UNAVAILABLE].
func answerUnavailable(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	w := bufio.NewWriter(c)
	r := bufio.NewReader(c)
	fmt.Fprint(w, "* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] busy server ready\r\n")
	for {
		if w.Flush() != nil {
			return
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			fmt.Fprint(w, "* BAD what?\r\n")
			continue
		}
		tag, cmd := f[0], strings.ToUpper(f[1])
		switch cmd {
		case "CAPABILITY":
			fmt.Fprintf(w, "* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN\r\n%s OK done\r\n", tag)
		case "LOGOUT":
			fmt.Fprintf(w, "* BYE bye\r\n%s OK done\r\n", tag)
			_ = w.Flush()
			return
		case "NOOP":
			fmt.Fprintf(w, "%s OK done\r\n", tag)
		default:
			// A LOGIN's password may follow as a literal: the answer does
			// not wait for it (the client reads the NO and gives up).
			fmt.Fprintf(w, "%s NO [UNAVAILABLE] Temporary authentication failure, try again later\r\n", tag)
		}
	}
}

package mailcopy

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// TestCleanConn: 8-bit bytes outside literals are escaped, invalid modified
// UTF-7 names in LIST are re-encoded, literals pass through untouched.
func TestCleanConn(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"8-bit keyword in FLAGS", "* FLAGS (\\Seen caf\x9c\xe9)\r\n", "* FLAGS (\\Seen caf=9C=E9)\r\n"},
		{"literal untouched", "* 1 FETCH (UID 4 BODY[] {5}\r\n\x00\x9c\r\n\xff)\r\n", "* 1 FETCH (UID 4 BODY[] {5}\r\n\x00\x9c\r\n\xff)\r\n"},
		{"invalid UTF-7 name", "* LIST (\\HasNoChildren) \"/\" \"&AOk\"\r\n", "* LIST (\\HasNoChildren) \"/\" \"&-AOk\"\r\n"},
		{"valid UTF-7 name", "* LIST () \"/\" \"&AMk-t&AOk-\"\r\n", "* LIST () \"/\" \"&AMk-t&AOk-\"\r\n"},
		{"name as a literal", "* LIST () \"/\" {4}\r\n&AOk\r\n", "* LIST () \"/\" {5}\r\n&-AOk\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			go func() { _, _ = io.WriteString(b, tt.in); b.Close() }()
			got, _ := io.ReadAll(newCleanConn(a, ""))
			if !bytes.Equal(got, []byte(tt.want)) {
				t.Fatalf("read %q, want %q", got, tt.want)
			}
		})
	}
	if !keywordHas8Bit("caf=9C") || keywordHas8Bit("a=b") {
		t.Fatalf("keywordHas8Bit misjudges")
	}
}

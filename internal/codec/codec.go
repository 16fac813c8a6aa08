// Package codec encrypts Temporal payloads with AES-256-GCM, so workflow
// inputs, results, heartbeats and failure messages are unreadable in the
// server's database and the UI without a key. Keys carry IDs: the first key
// encrypts, every key decrypts, so keys rotate by putting a new one first.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const (
	// Encoding marks an encrypted payload.
	Encoding    = "binary/encrypted"
	metaKeyID   = "encryption-key-id"
	metaEncName = "encoding"
)

// Codec encrypts and decrypts payloads.
type Codec struct {
	current string
	aeads   map[string]cipher.AEAD
}

var _ converter.PayloadCodec = (*Codec)(nil)

// ParseKeys reads "id:base64-32-byte-key" lines ('#' starts a comment).
func ParseKeys(text string) (*Codec, error) {
	c := &Codec{aeads: map[string]cipher.AEAD{}}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, k, ok := strings.Cut(line, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("key line %d: want id:base64key", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("key line %d (%s): want 32 bytes in base64", i+1, id)
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		if _, dup := c.aeads[id]; dup {
			return nil, fmt.Errorf("key line %d: key id %q used twice", i+1, id)
		}
		c.aeads[id] = aead
		if c.current == "" {
			c.current = id
		}
	}
	if c.current == "" {
		return nil, errors.New("no key in the key file")
	}
	return c, nil
}

// LoadKeys reads a key file.
func LoadKeys(path string) (*Codec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("codec key file: %w", err)
	}
	c, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("codec key file %s: %w", path, err)
	}
	return c, nil
}

// Encode encrypts each payload with the current key.
func (c *Codec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	aead := c.aeads[c.current]
	for i, p := range ps {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{metaEncName: []byte(Encoding), metaKeyID: []byte(c.current)},
			Data:     aead.Seal(nonce, nonce, plain, []byte(c.current)),
		}
	}
	return out, nil
}

// Decode decrypts encrypted payloads and passes others through.
func (c *Codec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.GetMetadata()[metaEncName]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.Metadata[metaKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("payload encrypted with key %q, which this process does not have", id)
		}
		ns := aead.NonceSize()
		if len(p.Data) < ns {
			return nil, errors.New("encrypted payload too short")
		}
		plain, err := aead.Open(nil, p.Data[:ns], p.Data[ns:], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("decrypt payload with key %q: %w", id, err)
		}
		var dec commonpb.Payload
		if err := proto.Unmarshal(plain, &dec); err != nil {
			return nil, err
		}
		out[i] = &dec
	}
	return out, nil
}

// DataConverter wraps the default converter with the codec.
func (c *Codec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter moves failure messages and stack traces into an
// encrypted payload: without it they stay in the history in clear text, and
// an engine error quotes addresses, folder names and the servers' replies.
// The history keeps only "Encoded failure" and the error's type.
func (c *Codec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: c.DataConverter(), EncodeCommonAttributes: true})
}

// Apply makes a client (and the workers built on it) encrypt what it writes
// to the history and decrypt what it reads: payloads and failures.
func (c *Codec) Apply(opts *client.Options) {
	opts.DataConverter = c.DataConverter()
	opts.FailureConverter = c.FailureConverter()
}

// Server is the codec server the Temporal UI calls to show decoded
// payloads: it answers only requests with the bearer token, and allows the
// UI's origin.
func (c *Codec) Server(token, uiOrigin string) http.Handler {
	h := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if uiOrigin != "" {
			w.Header().Set("Access-Control-Allow-Origin", uiOrigin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		if !bearerOK(r.Header.Get("Authorization"), token) {
			http.Error(w, "codec server: missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bearerOK compares an Authorization header with the token in constant
// time; hashing first hides the token's length too. An empty token never
// matches: a codec server without one refuses everyone.
func bearerOK(header, token string) bool {
	got := sha256.Sum256([]byte(header))
	want := sha256.Sum256([]byte("Bearer " + token))
	return token != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

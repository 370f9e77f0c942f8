package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks v1 header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix starts a Standard Webhooks symmetric secret.
const secretPrefix = "whsec_"

// Secret is one signing key. Its String and GoString never show the key,
// so it can be logged or printed with %v by mistake without leaking.
type Secret struct{ key []byte }

// String implements fmt.Stringer without the key.
func (Secret) String() string { return "whsec_[redacted]" }

// GoString implements fmt.GoStringer without the key.
func (Secret) GoString() string { return "hooks.Secret{[redacted]}" }

// ParseSecret reads a whsec_<base64> secret. Standard Webhooks asks for
// 24 to 64 bytes of key.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, secretPrefix) {
		return Secret{}, errors.New("secret does not start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
	if err != nil {
		return Secret{}, errors.New("secret after whsec_ is not standard base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return Secret{}, fmt.Errorf("secret key is %d bytes, Standard Webhooks asks for 24 to 64", len(key))
	}
	return Secret{key: key}, nil
}

// ParseSecrets reads one secret per non-empty line: several lines rotate
// keys (every request is signed with each). Messages name the line, never
// its content.
func ParseSecrets(text string) ([]Secret, error) {
	var out []Secret
	for i, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		s, err := ParseSecret(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("no secret")
	}
	return out, nil
}

// Sign returns the webhook-signature header value for one request:
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for each secret,
// separated by spaces. It is safe for concurrent use.
func Sign(secrets []Secret, id string, ts time.Time, body []byte) string {
	var b strings.Builder
	msg := make([]byte, 0, len(id)+len(body)+24)
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = strconv.AppendInt(msg, ts.Unix(), 10)
	msg = append(msg, '.')
	msg = append(msg, body...)
	for i, s := range secrets {
		if i > 0 {
			b.WriteByte(' ')
		}
		h := hmac.New(sha256.New, s.key)
		h.Write(msg)
		b.WriteString("v1,")
		b.WriteString(base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
	return b.String()
}

// WebhookID is the stable webhook-id of the request of action for alertID
// to endpoint: the same on every retry, after a restart and on a replay of
// the alerts topic, so receivers can deduplicate on it.
func WebhookID(alertID, action, endpoint string) string {
	h := sha256.New()
	for _, s := range []string{alertID, action, endpoint} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "msg_" + hex.EncodeToString(h.Sum(nil)[:16])
}

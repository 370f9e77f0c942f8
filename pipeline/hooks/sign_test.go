package hooks

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// newSecretText returns a fresh whsec_ secret.
func newSecretText(t testing.TB) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

func signedHeaders(secrets []Secret, id string, ts time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(secrets, id, ts, body))
	return h
}

// TestSignVerifiesWithStandardWebhooks checks the signatures with the
// official Go library of the Standard Webhooks project, an implementation
// that is not ours.
func TestSignVerifiesWithStandardWebhooks(t *testing.T) {
	oldText, newText := newSecretText(t), newSecretText(t)
	secrets, err := ParseSecrets(oldText + "\n" + newText + "\n")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"number.suspend","subject":"+15550123456","subject_kind":"caller","alert":{}}`)
	id := WebhookID("a1", "suspend", "sps")
	now := time.Now()

	verify := func(secret string, body []byte, h http.Header) error {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		return wh.Verify(body, h)
	}
	h := signedHeaders(secrets, id, now, body)
	// Both keys of a rotation verify.
	for i, s := range []string{oldText, newText} {
		if err := verify(s, body, h); err != nil {
			t.Errorf("secret %d of 2: %v", i+1, err)
		}
	}
	// One key alone verifies too (before and after a rotation).
	only := signedHeaders(secrets[1:], id, now, body)
	if err := verify(newText, body, only); err != nil {
		t.Errorf("single secret: %v", err)
	}
	if err := verify(oldText, body, only); err == nil {
		t.Error("the retired secret verifies a request signed only with the new one")
	}
	// What must fail.
	tampered := []byte(strings.Replace(string(body), "+15550123456", "+15550123457", 1))
	if err := verify(oldText, tampered, h); err == nil {
		t.Error("tampered body verifies")
	}
	if err := verify(newSecretText(t), body, h); err == nil {
		t.Error("wrong secret verifies")
	}
	old := signedHeaders(secrets, id, now.Add(-10*time.Minute), body)
	if err := verify(oldText, body, old); err == nil {
		t.Error("a 10-minute-old timestamp verifies")
	}
	otherID := h.Clone()
	otherID.Set(HeaderID, WebhookID("a1", "release", "sps"))
	if err := verify(oldText, body, otherID); err == nil {
		t.Error("a signature verifies under another webhook-id")
	}
}

// TestSignSpecVector checks Sign against the example of the Standard
// Webhooks specification's libraries (spec/standard-webhooks.md).
func TestSignSpecVector(t *testing.T) {
	s, err := ParseSecrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(s, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestParseSecrets(t *testing.T) {
	good := newSecretText(t)
	f := func(text, wantErr string) {
		t.Helper()
		_, err := ParseSecrets(text)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseSecrets(%q) error %v, want %q", text, err, wantErr)
		}
		if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(good, "whsec_")) {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	f("", "no secret")
	f("\n\n", "no secret")
	f("abc", "line 1: secret does not start with whsec_")
	f(good+"\nwhsec_!!", "line 2: secret after whsec_ is not standard base64")
	f("whsec_"+base64.StdEncoding.EncodeToString([]byte("short")), "5 bytes")
	s, err := ParseSecrets(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(out, strings.TrimPrefix(good, "whsec_")[:8]) {
			t.Errorf("printing a secret shows it: %s", out)
		}
	}
}

func TestWebhookIDStable(t *testing.T) {
	a := WebhookID("alert-1", "suspend", "sps")
	if a != WebhookID("alert-1", "suspend", "sps") {
		t.Fatal("WebhookID is not deterministic")
	}
	for _, other := range []string{WebhookID("alert-2", "suspend", "sps"), WebhookID("alert-1", "release", "sps"), WebhookID("alert-1", "suspend", "sps2"), WebhookID("alert-1s", "uspend", "sps")} {
		if other == a {
			t.Errorf("distinct requests share webhook-id %s", a)
		}
	}
	if !strings.HasPrefix(a, "msg_") || len(a) != 36 {
		t.Errorf("webhook-id %q", a)
	}
}

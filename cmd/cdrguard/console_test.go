package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cdrguard/cdrguard/pipeline/console"
)

func TestConsoleHashPassword(t *testing.T) {
	var out bytes.Buffer
	if err := hashPassword(strings.NewReader("a-good-password\n"), &out); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out.String())
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("a-good-password")) != nil {
		t.Errorf("hash %q does not verify", h)
	}
	if err := hashPassword(strings.NewReader("short\n"), &out); err == nil {
		t.Error("a 5-character password was hashed")
	}
}

// TestConsoleBadConfigs: a bad console section or flag is refused before
// anything is opened, with a message naming the key; a non-loopback
// listen address needs TLS or an explicit insecure.
func TestConsoleBadConfigs(t *testing.T) {
	f := func(body string, args []string, want string) {
		t.Helper()
		all := append([]string{"console", "--config", writeConfig(t, "clickhouse: {dsn: 'clickhouse://127.0.0.1:1/x'}\n"+body)}, args...)
		code, _, stderr := cli(t, all...)
		if code == 0 || !strings.Contains(stderr, want) {
			t.Fatalf("%s %v: exit %d, stderr %q, want it to contain %q", body, args, code, stderr, want)
		}
	}
	f("console: {colour: red, users_file: u.yaml}", nil, "colour")
	f("console: {users_file: u.yaml, listen: nohost}", nil, `console.listen "nohost" is not host:port`)
	f("console: {users_file: u.yaml, listen: '0.0.0.0:8080'}", nil, `console.listen "0.0.0.0:8080" is not loopback: set console.tls_cert_file`)
	f("console: {users_file: u.yaml}", []string{"--listen", "10.1.2.3:8080"}, `console.listen "10.1.2.3:8080" is not loopback`)
	f("console: {users_file: u.yaml, tls_cert_file: c.pem}", nil, "console.tls_cert_file and console.tls_key_file go together")
	f("console: {users_file: u.yaml, session_ttl: -1h}", nil, "console.session_ttl -1h0m0s must be positive")
	f("console: {users_file: u.yaml, release_api: {url: 'http://127.0.0.1:8086'}}", nil, "console.release_api.token_file is needed")
	f("console: {users_file: u.yaml, release_api: {url: 'ftp://x', token_file: t}}", nil, `console.release_api.url "ftp://x" must be an absolute http or https URL`)
	f("console: {users_file: u.yaml, release_api: {url: 'http://x', token_file: t, timeout: -1s}}", nil, "console.release_api.timeout -1s must be positive")
	f("", nil, "console.users_file is needed")
	// Allowed: past the checks, the missing users file is the next error.
	f("console: {users_file: missing.yaml, listen: '0.0.0.0:8080', insecure: true}", nil, "cannot read users file")
	f("console: {users_file: missing.yaml}", []string{"--listen", "10.1.2.3:8080", "--insecure"}, "cannot read users file")
	f("console: {users_file: missing.yaml, listen: '[::]:8443', tls_cert_file: c.pem, tls_key_file: k.pem}", nil, "cannot read users file")
	f("console: {users_file: missing.yaml, listen: 'localhost:8080'}", nil, "cannot read users file")
}

// TestConsoleTLS runs cdrguard console with a generated certificate on a
// real listener: the login page answers over HTTPS, its cookies are
// Secure, a login works, and plain HTTP to the port is refused.
func TestConsoleTLS(t *testing.T) {
	addr := clickhouseAddr(t)
	dir := t.TempDir()
	certFile, keyFile, pool := writeTestCert(t, dir)
	hash, err := console.HashPassword("a long passphrase")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(users, []byte("users:\n  - {name: ana, role: analyst, password_hash: '"+hash+"'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	_ = ln.Close()
	cfg := writeConfig(t, "console:\n  listen: '"+listen+"'\n  users_file: "+users+"\n  tls_cert_file: "+certFile+"\n  tls_key_file: "+keyFile+
		"\n  session_key_file: "+writeFile(t, dir, "session.key", strings.Repeat("s", 40))+"\nlog: {level: warn}\nshutdown_timeout: 5s\n")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"console", "--config", cfg, "--clickhouse", "clickhouse://" + addr + "/default", "--rules", "../../deploy/rules.yaml"},
			io.Discard, &stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("console exited %d: %s", code, stderr.String())
		}
	}()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Timeout: 10 * time.Second, Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "https://" + listen
	var resp *http.Response
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err = client.Get(base + "/login"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTPS answer from the console: %v\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || len(resp.Cookies()) == 0 || !resp.Cookies()[0].Secure {
		t.Fatalf("GET /login over TLS: HTTP %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field on the login page")
	}
	resp, err = client.PostForm(base+"/login", url.Values{"csrf": {string(m[1])}, "username": {"ana"}, "password": {"a long passphrase"}, "next": {"/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "cdrguard_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly {
		t.Errorf("login over TLS: HTTP %d, session cookie %+v", resp.StatusCode, session)
	}
	plain, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + listen + "/login")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: HTTP %d, want 400", plain.StatusCode)
		}
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and
// localhost, and returns its files and a pool trusting it.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cdrguard console test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

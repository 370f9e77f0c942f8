package kafkaio_test

// TLS and SASL settings of kafkaio.Conn against the real local broker
// (deploy/local/services.sh): its SASL_PLAINTEXT listener (PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512) and its SASL_SSL listener, whose server
// certificate is signed by a throwaway CA in the scratch directory.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
)

// saslBroker is where the local broker's SASL listeners are and who may
// log in; see `deploy/local/services.sh env`.
type saslBroker struct {
	Plain    string // SASL_PLAINTEXT host:port
	SSL      string // SASL_SSL host:port
	CAFile   string // the CA that signed the SASL_SSL server certificate
	User     string
	Password string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// missing skips the test, or fails it under CDRGUARD_INTEGRATION=1 (make
// test), like kafkatest.Brokers does.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CDRGUARD_INTEGRATION") == "1" {
		t.Fatalf("%s (make services-up starts it; after updating deploy/local/services.sh: SERVICES=kafka deploy/local/services.sh down && SERVICES=kafka deploy/local/services.sh up)", msg)
	}
	t.Skipf("%s; run make services-up (or make test)", msg)
}

func reachable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// sasl returns the SASL_PLAINTEXT listener, skipping (or failing) the test
// when it does not answer. Addresses and credentials come from the
// environment (KAFKA_SASL_BROKERS, KAFKA_SSL_BROKERS, KAFKA_CA_FILE,
// KAFKA_SASL_USER, KAFKA_SASL_PASSWORD), defaulting to what services.sh sets
// up; the CA defaults to $CDRGUARD_SCRATCH/kafka/tls/ca.crt.
func sasl(t *testing.T) saslBroker {
	t.Helper()
	b := saslBroker{
		Plain:    envOr("KAFKA_SASL_BROKERS", "127.0.0.1:9094"),
		SSL:      envOr("KAFKA_SSL_BROKERS", "127.0.0.1:9095"),
		CAFile:   os.Getenv("KAFKA_CA_FILE"),
		User:     envOr("KAFKA_SASL_USER", "cdrguard"),
		Password: envOr("KAFKA_SASL_PASSWORD", "cdrguard-test-secret"),
	}
	if b.CAFile == "" {
		b.CAFile = filepath.Join(envOr("CDRGUARD_SCRATCH", "/tmp/cdrguard-services"), "kafka", "tls", "ca.crt")
	}
	if err := reachable(b.Plain); err != nil {
		missing(t, "no Kafka SASL_PLAINTEXT listener at %s: %v", b.Plain, err)
	}
	return b
}

// saslSSL is sasl, and also needs the SASL_SSL listener and its CA file.
func saslSSL(t *testing.T) saslBroker {
	t.Helper()
	b := sasl(t)
	if err := reachable(b.SSL); err != nil {
		missing(t, "no Kafka SASL_SSL listener at %s: %v", b.SSL, err)
	}
	if _, err := os.Stat(b.CAFile); err != nil {
		missing(t, "no CA file for the SASL_SSL listener (KAFKA_CA_FILE): %v", err)
	}
	return b
}

func (b saslBroker) conn(addr, mechanism string) kafkaio.Conn {
	return kafkaio.Conn{
		Brokers:  []string{addr},
		ClientID: "cdrguard-test",
		SASL:     kafkaio.SASL{Mechanism: mechanism, Username: b.User, Password: b.Password},
	}
}

// roundTrip does what the job does through c: create a topic, write to it
// with NewWriter (Transport), read its metadata (Dialer) and read the
// messages back with NewReader (Dialer), then deletes the topic.
func roundTrip(t *testing.T, c kafkaio.Conn) {
	t.Helper()
	kc, err := kafkaio.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	topic := kafkatest.Name(t, "topic")
	if err := kc.EnsureTopics(ctx, kafkaio.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: -1}); err != nil {
		t.Fatalf("EnsureTopics over %s: %v", c.Redacted(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if resp, err := kc.Admin.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		} else if err := resp.Errors[topic]; err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})

	want := []string{"first " + topic, "second", "third: ünïcode"}
	msgs := make([]kafka.Message, len(want))
	for i, v := range want {
		msgs[i] = kafka.Message{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v)}
	}
	w := kc.NewWriter(nil)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		w.Close()
		t.Fatalf("write over %s: %v", c.Redacted(), err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	if n, err := kc.Partitions(ctx, topic); err != nil || n != 1 {
		t.Fatalf("Partitions(%s) = %d, %v; want 1", topic, n, err)
	}
	r, err := kc.NewReader(topic, 0, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, v := range want {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read message %d over %s: %v", i, c.Redacted(), err)
		}
		if m.Offset != int64(i) || string(m.Value) != v || string(m.Key) != fmt.Sprintf("k%d", i) {
			t.Fatalf("message %d: offset %d key %q value %q; want offset %d key k%d value %q", i, m.Offset, m.Key, m.Value, i, i, v)
		}
	}
}

func TestSASLPlaintext(t *testing.T) {
	b := sasl(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			roundTrip(t, b.conn(b.Plain, mech))
		})
	}
}

func TestSASLPasswordFile(t *testing.T) {
	b := sasl(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256"} {
		t.Run(mech, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "password")
			// As an editor or `echo` leaves it: with a line end.
			if err := os.WriteFile(path, []byte(b.Password+"\r\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c := b.conn(b.Plain, mech)
			c.SASL.Password, c.SASL.PasswordFile = "", path
			roundTrip(t, c)
		})
	}
}

func TestSASLSSL(t *testing.T) {
	b := saslSSL(t)
	t.Run("SCRAM-SHA-512 ca_file", func(t *testing.T) {
		c := b.conn(b.SSL, "SCRAM-SHA-512")
		c.TLS = kafkaio.TLS{Enabled: true, CAFile: b.CAFile}
		roundTrip(t, c)
	})
	t.Run("PLAIN ca_file", func(t *testing.T) {
		c := b.conn(b.SSL, "PLAIN")
		c.TLS = kafkaio.TLS{Enabled: true, CAFile: b.CAFile}
		roundTrip(t, c)
	})
	t.Run("SCRAM-SHA-256 server_name localhost", func(t *testing.T) {
		// Dial the IP, verify the certificate's DNS name.
		c := b.conn(b.SSL, "SCRAM-SHA-256")
		c.TLS = kafkaio.TLS{Enabled: true, CAFile: b.CAFile, ServerName: "localhost"}
		roundTrip(t, c)
	})
	t.Run("SCRAM-SHA-512 insecure_skip_verify", func(t *testing.T) {
		c := b.conn(b.SSL, "SCRAM-SHA-512")
		c.TLS = kafkaio.TLS{Enabled: true, InsecureSkipVerify: true}
		roundTrip(t, c)
	})
}

// failFast runs the admin, writer and dialer paths of c, each with a new
// Client, and checks that each fails well within its deadline, with an
// error that check accepts. The reader path gives up only after its
// MaxAttempts (5-7 s), so it runs only when withReader is set.
func failFast(t *testing.T, c kafkaio.Conn, what string, check func(error) bool, withReader bool) {
	t.Helper()
	// Far more than it takes; a hang shows up as a deadline error, which
	// check rejects.
	const limit = 30 * time.Second
	topic := kafkatest.Name(t, "topic")
	paths := []struct {
		name string
		run  func(ctx context.Context, kc *kafkaio.Client) error
	}{
		{"EnsureTopics", func(ctx context.Context, kc *kafkaio.Client) error {
			return kc.EnsureTopics(ctx, kafkaio.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: -1})
		}},
		{"Offsets", func(ctx context.Context, kc *kafkaio.Client) error {
			_, _, err := kc.Offsets(ctx, topic, 1)
			return err
		}},
		{"NewWriter.WriteMessages", func(ctx context.Context, kc *kafkaio.Client) error {
			w := kc.NewWriter(nil)
			defer w.Close()
			return w.WriteMessages(ctx, kafka.Message{Topic: topic, Value: []byte("x")})
		}},
		{"Partitions", func(ctx context.Context, kc *kafkaio.Client) error {
			_, err := kc.Partitions(ctx, topic)
			return err
		}},
		{"NewReader.FetchMessage", func(ctx context.Context, kc *kafkaio.Client) error {
			_, err := kc.MessageAt(ctx, topic, 0, 0, 1<<20)
			return err
		}},
	}
	if !withReader {
		paths = paths[:len(paths)-1]
	}
	for _, p := range paths {
		kc, err := kafkaio.NewClient(c)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		start := time.Now()
		err = p.run(ctx, kc)
		cancel()
		kc.Close()
		took := time.Since(start).Round(time.Millisecond)
		switch {
		case err == nil:
			t.Errorf("%s over %s succeeded; want %s", p.name, c.Redacted(), what)
		case !check(err):
			t.Errorf("%s over %s failed after %v with %v; want %s", p.name, c.Redacted(), took, err, what)
		default:
			t.Logf("%s failed after %v: %v", p.name, took, err)
		}
		if err != nil && c.SASL.Password != "" && strings.Contains(err.Error(), c.SASL.Password) {
			t.Errorf("%s: the error names the password: %v", p.name, err)
		}
	}
}

func isAuthError(err error) bool { return errors.Is(err, kafka.SASLAuthenticationFailed) }

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func isHostnameError(err error) bool {
	var he x509.HostnameError
	return errors.As(err, &he)
}

func TestSASLWrongPassword(t *testing.T) {
	b := sasl(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			c := b.conn(b.Plain, mech)
			c.SASL.Password = "not-" + b.Password
			failFast(t, c, "SASL authentication failure", isAuthError, mech == "SCRAM-SHA-512")
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		t.Parallel()
		c := b.conn(b.Plain, "SCRAM-SHA-512")
		c.SASL.Username = "nobody-" + b.User
		failFast(t, c, "SASL authentication failure", isAuthError, false)
	})
	t.Run("SASL_SSL SCRAM-SHA-512", func(t *testing.T) {
		t.Parallel()
		b := saslSSL(t)
		c := b.conn(b.SSL, "SCRAM-SHA-512")
		c.TLS = kafkaio.TLS{Enabled: true, CAFile: b.CAFile}
		c.SASL.Password = "not-" + b.Password
		failFast(t, c, "SASL authentication failure", isAuthError, false)
	})
}

func TestSASLSSLUntrusted(t *testing.T) {
	b := saslSSL(t)
	t.Run("system roots", func(t *testing.T) {
		t.Parallel()
		// No ca_file: the system roots do not know the throwaway CA.
		c := b.conn(b.SSL, "SCRAM-SHA-512")
		c.TLS = kafkaio.TLS{Enabled: true}
		failFast(t, c, "x509: certificate signed by unknown authority", isUnknownAuthority, true)
	})
	t.Run("other CA", func(t *testing.T) {
		t.Parallel()
		// A ca_file holding some other CA.
		other := filepath.Join(t.TempDir(), "other-ca.crt")
		if err := os.WriteFile(other, otherCA(t), 0o600); err != nil {
			t.Fatal(err)
		}
		c := b.conn(b.SSL, "SCRAM-SHA-512")
		c.TLS = kafkaio.TLS{Enabled: true, CAFile: other}
		failFast(t, c, "x509: certificate signed by unknown authority", isUnknownAuthority, false)
	})
	t.Run("server_name mismatch", func(t *testing.T) {
		t.Parallel()
		c := b.conn(b.SSL, "SCRAM-SHA-512")
		c.TLS = kafkaio.TLS{Enabled: true, CAFile: b.CAFile, ServerName: "kafka.invalid"}
		failFast(t, c, "x509: certificate is valid for ..., not kafka.invalid", isHostnameError, false)
	})
}

func TestConnRedacted(t *testing.T) {
	const secret = "s3cret-Pa55"
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []kafkaio.Conn{
		{Brokers: []string{"127.0.0.1:9094"}, SASL: kafkaio.SASL{Mechanism: "PLAIN", Username: "cdrguard", Password: secret}},
		{Brokers: []string{"127.0.0.1:9094"}, SASL: kafkaio.SASL{Mechanism: "scram-sha-512", Username: "cdrguard", Password: secret}},
		{Brokers: []string{"127.0.0.1:9095", "localhost:9095"}, TLS: kafkaio.TLS{Enabled: true, InsecureSkipVerify: true, ServerName: "localhost"},
			SASL: kafkaio.SASL{Mechanism: "SCRAM-SHA-256", Username: "cdrguard", PasswordFile: pwFile}},
		{Brokers: []string{"127.0.0.1:9092"}, SASL: kafkaio.SASL{Password: secret}},
	} {
		red := c.Redacted()
		if strings.Contains(red, secret) {
			t.Errorf("Redacted() = %q names the password", red)
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if s := fmt.Sprintf(verb, c); strings.Contains(s, secret) {
				t.Errorf("Sprintf(%q, conn) = %q names the password", verb, s)
			}
		}
		if c.SASL.Mechanism != "" && !strings.Contains(red, c.SASL.Username) {
			t.Errorf("Redacted() = %q does not name the user %s", red, c.SASL.Username)
		}
		// A Client keeps its Conn; its description must not leak either.
		kc, err := kafkaio.NewClient(c)
		if err != nil {
			t.Fatalf("NewClient(%s): %v", red, err)
		}
		if r := kc.Conn.Redacted(); strings.Contains(r, secret) {
			t.Errorf("Client.Conn.Redacted() = %q names the password", r)
		}
		kc.Close()
	}
}

// otherCA returns a self-signed CA certificate (PEM) that signed nothing
// the test broker uses.
func otherCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "not the cdrguard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

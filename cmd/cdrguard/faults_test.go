package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/synth"
)

// ownBroker is a Kafka broker of the test's own (the project's services
// script in a scratch directory, on free ports), so the test can kill it
// without disturbing the tests that share the main broker.
type ownBroker struct {
	scratch string
	ports   [4]string // client, controller, SASL, SSL
	addr    string
}

func ownKafka(t *testing.T) *ownBroker {
	t.Helper()
	kafkatest.Brokers(t) // the services are expected: fail under CDRGUARD_INTEGRATION=1, skip otherwise
	b := &ownBroker{scratch: t.TempDir()}
	seen := map[string]bool{}
	for i := range b.ports {
		p := freePort(t)
		for seen[p] {
			p = freePort(t)
		}
		seen[p], b.ports[i] = true, p
	}
	b.addr = "127.0.0.1:" + b.ports[0]
	b.script(t, "up")
	t.Cleanup(func() { b.script(t, "purge") })
	return b
}

func (b *ownBroker) script(t *testing.T, verb string) {
	t.Helper()
	cmd := exec.Command("../../deploy/local/services.sh", verb)
	cmd.Env = append(os.Environ(), "SERVICES=kafka", "CDRGUARD_SCRATCH="+b.scratch,
		"KAFKA_PORT="+b.ports[0], "KAFKA_CONTROLLER_PORT="+b.ports[1], "KAFKA_SASL_PORT="+b.ports[2],
		"KAFKA_SSL_PORT="+b.ports[3], "KAFKA_HEAP_OPTS=-Xms128m -Xmx512m")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("services.sh %s: %v\n%s", verb, err, out)
	}
}

// kill stops the broker with SIGKILL, as a crashed machine would.
func (b *ownBroker) kill(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.scratch, "kafka", "kafka.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *ownBroker) client(t *testing.T) *kafkaio.Client {
	t.Helper()
	kc, err := kafkaio.NewClient(kafkaio.Conn{Brokers: []string{b.addr}, ClientID: "cdrguard-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return kc
}

// exited reports whether a child started with child has exited (it is
// not reaped until the test stops it, so it shows as a zombie).
func exited(cmd *exec.Cmd) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// faultConfig is a run config with a short shutdown timeout, so that an
// outage is much longer than it.
func faultConfig(t *testing.T, broker, topic, group, alerts, chDSN string) string {
	t.Helper()
	path := e2eConfig(t, []string{broker}, topic, group, alerts, chDSN)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "shutdown_timeout: 20s", "shutdown_timeout: 3s", 1)
	// Small batches, one in flight: the job drains the day in seconds
	// rather than one, so the fault falls mid-stream.
	cfg = strings.Replace(cfg, "  commit_interval: 200ms\n", "  commit_interval: 200ms\n  max_batch: 200\n  max_in_flight: 1\n", 1)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBrokerOutageLongerThanShutdownTimeout kills the broker with SIGKILL
// mid-stream and keeps it down for several shutdown timeouts. The job
// stays up and, once the broker is back, ends with exactly the alerts a
// replay raises (IDs included, none twice) in the topic and in
// ClickHouse, and caller_daily exact for every caller above the floor.
func TestBrokerOutageLongerThanShutdownTimeout(t *testing.T) {
	chAddr := clickhouseAddr(t)
	b := ownKafka(t)
	kc := b.client(t)
	recs := synth.Generate(synth.Config{Seed: 22, Scale: 0.15}).Records
	topic, group, alerts := "cdrs", "g-outage", "cdr-alerts"
	kafkatest.ProduceCDRs(t, kc, topic, 6, recs)
	total := int64(len(recs))
	replay := kafkatest.Replay(t, rulesFile, recs)
	db := "faults_broker_" + suffix()
	dropDB(t, chAddr, db)

	run := child(t, faultConfig(t, b.addr, topic, group, alerts, "clickhouse://"+chAddr+"/"+db))
	waitCommitted(t, kc, group, topic, total/4, 3*time.Minute)
	atKill := kafkatest.Committed(t, kc, group, topic)
	b.kill(t)
	downAt := time.Now()
	if atKill >= total {
		t.Fatalf("the job had committed all %d records before the broker was killed: the test no longer tests an outage mid-stream", total)
	}
	t.Logf("broker killed with %d of %d records committed", atKill, total)
	time.Sleep(15 * time.Second) // five shutdown timeouts
	if exited(run) {
		t.Fatal("cdrguard run exited during the broker outage")
	}
	b.script(t, "up")
	t.Logf("broker down for %v", time.Since(downAt).Round(time.Second))
	kafkatest.WaitCaughtUp(t, kc, group, 5*time.Minute, topic, topic+".sources")
	waitLoaded(t, kc, group, topic, alerts, false)
	stopChild(t, run)

	kafkatest.SameAlerts(t, "alerts after a broker outage vs replay", replay, kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, alerts)))
	got := tables(t, chConn(t, chAddr, db))
	sameStoredAlerts(t, "ClickHouse alerts after a broker outage vs replay", replay, got["alerts"])
	checkCallerDaily(t, recs, got["caller_daily"])
}

// TestExpelledMemberWritesNothing freezes one of two instances (SIGSTOP)
// during a ClickHouse outage for longer than its session, so the other
// takes its partitions; the frozen one is then woken up. Whatever it had
// in flight, nothing it writes after losing its partitions shows: the
// alerts topic holds exactly the replay's alerts, none twice, and
// ClickHouse ends with the same alerts and exact day counts.
func TestExpelledMemberWritesNothing(t *testing.T) {
	kc := kafkatest.Client(t)
	own := ownClickHouse(t)
	recs := synth.Generate(synth.Config{Seed: 23, Scale: 0.15}).Records
	topic, group, alerts := kafkatest.Name(t, "cdrs"), kafkatest.Name(t, "group"), kafkatest.Name(t, "alerts")
	if err := kc.EnsureTopics(context.Background(), kafkaio.TopicSpec{Name: topic, Partitions: 6, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	total := int64(len(recs))
	replay := kafkatest.Replay(t, rulesFile, recs)
	db := "faults_expelled_" + suffix()
	cfg := e2eConfig(t, kc.Conn.Brokers, topic, group, alerts, "clickhouse://"+own.addr+"/"+db)

	// The day arrives while the instances run (10k records/s), so the
	// freeze falls mid-stream and b has records of its own to take.
	a := child(t, cfg)
	produced := make(chan error, 1)
	go func() {
		produced <- kc.ProduceCDRs(context.Background(), topic, kafkaio.ProduceOptions{Rate: 10000}, recs)
	}()
	defer func() {
		if err := <-produced; err != nil {
			t.Error(err)
		}
	}()
	waitCommitted(t, kc, group, topic, total/5, 3*time.Minute)
	own.stop(t)
	if err := a.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozenAt := time.Now()
	bb := child(t, cfg)
	// b owns everything once a's session (6 s) has expired: it commits the
	// whole input while a is frozen.
	waitCommitted(t, kc, group, topic, total*2/3, 3*time.Minute)
	if err := a.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("a frozen for %v while b took over", time.Since(frozenAt).Round(time.Second))
	kafkatest.WaitCaughtUp(t, kc, group, 5*time.Minute, topic, topic+".sources")
	own.start(t)
	waitLoaded(t, kc, group, topic, alerts, false)
	stopChild(t, a)
	stopChild(t, bb)

	kafkatest.SameAlerts(t, "alerts with an expelled member vs replay", replay, kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, alerts)))
	got := tables(t, chConn(t, own.addr, db))
	sameStoredAlerts(t, "ClickHouse alerts with an expelled member vs replay", replay, got["alerts"])
	checkCallerDaily(t, recs, got["caller_daily"])
}

// exited tells a running child from one that has exited but is not
// reaped yet, so the outage tests' "still up" checks can fail.
func TestExitedSeesAnUnreapedChild(t *testing.T) {
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	if exited(cmd) {
		t.Fatal("a running child reported as exited")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !exited(cmd) {
		if time.Now().After(deadline) {
			t.Fatal("an exited child not reported as exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

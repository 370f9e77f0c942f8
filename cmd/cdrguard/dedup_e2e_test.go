package main

import (
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/synth"
)

// TestStreamDropsDuplicatesEndToEnd produces a generated day with copies
// added the way mediation systems deliver them (2% of records again a few
// minutes later, three whole batches re-sent 20 to 60 minutes later) and
// the same day without them, runs each through Kafka and `cdrguard run`
// with its ClickHouse loader, and checks that the copies change nothing:
// caller_daily exact for every caller above the floor, caller_minute,
// caller_hourly and network_minute equal to the clean day's, and the
// alerts (IDs and JSON included) those of a replay of the clean day.
func TestStreamDropsDuplicatesEndToEnd(t *testing.T) {
	kc := kafkatest.Client(t)
	chAddr := clickhouseAddr(t)
	cfg := synth.Config{Seed: 23, Scale: 0.1}
	clean := synth.Generate(cfg).Records
	cfg.Duplicates, cfg.ResentBatches = 0.02, 3
	dup := synth.Generate(cfg)
	if dup.Duplicates < len(clean)/100 || len(dup.Records) != len(clean)+dup.Duplicates {
		t.Fatalf("%d records with %d copies, %d without", len(dup.Records), dup.Duplicates, len(clean))
	}
	t.Logf("%d records, %d of them copies", len(dup.Records), dup.Duplicates)
	replay := kafkatest.Replay(t, rulesFile, clean)
	if len(replay) == 0 {
		t.Fatal("no alert in the clean day")
	}

	run := func(name string, recs int, produce func(topic string)) map[string][]string {
		t.Helper()
		topic := kafkatest.Name(t, name)
		produce(topic)
		db, group, alerts := "e2e_"+name+"_"+suffix(), kafkatest.Name(t, "g"+name), kafkatest.Name(t, "alerts"+name)
		dropDB(t, chAddr, db)
		job := child(t, e2eConfig(t, kc.Conn.Brokers, topic, group, alerts, "clickhouse://"+chAddr+"/"+db))
		kafkatest.WaitCaughtUp(t, kc, group, 5*time.Minute, topic, topic+".sources")
		waitLoaded(t, kc, group, topic, alerts, false)
		stopChild(t, job)
		kafkatest.SameAlerts(t, name+": alerts topic vs a replay of the clean day", replay, kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, alerts)))
		got := tables(t, chConn(t, chAddr, db))
		checkCallerDaily(t, clean, got["caller_daily"])
		sameStoredAlerts(t, name+": ClickHouse alerts vs replay", replay, got["alerts"])
		t.Logf("%s: %d records through the stream", name, recs)
		return got
	}
	want := run("clean", len(clean), func(topic string) { kafkatest.ProduceCDRs(t, kc, topic, 6, clean) })
	got := run("dup", len(dup.Records), func(topic string) { kafkatest.ProduceCDRs(t, kc, topic, 6, dup.Records) })
	sameTables(t, "with duplicates", want, got)
}

package clickhouse_test

import (
	"context"
	"log"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
)

// Example shows how cdrguard run wires the package: connect, migrate,
// load the allowlist, then let every partition worker Write its rows
// before it commits its offsets.
func Example() {
	ctx := context.Background()
	logger := zap.NewExample()
	opts := clickhouse.Options{
		DSN:                 "clickhouse://127.0.0.1:9000/cdrguard",
		Username:            "cdrguard",
		Password:            os.Getenv("CDRGUARD_CLICKHOUSE_PASSWORD"),
		StoreCDRs:           true,
		CDRRetentionDays:    30,
		PseudonymizeCallees: true,
		PseudonymKey:        []byte(os.Getenv("CDRGUARD_PSEUDONYM_KEY")),
	}
	if err := opts.Validate(); err != nil {
		log.Fatal(err)
	}
	client, err := clickhouse.Open(ctx, opts, logger)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if err := client.ReplaceAllowlist(ctx, []string{"+18005550100"}, []string{"+1800555"}, nil, "/etc/cdrguard/rules.yaml"); err != nil {
		log.Fatal(err)
	}
	sink := client.NewSink()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sink.Close(closeCtx); err != nil {
			logger.Error("clickhouse rows lost at shutdown", zap.Error(err))
		}
	}()

	// In each partition worker, after the engine produced its output:
	var rows clickhouse.Rows
	rows.CallerMinutes = append(rows.CallerMinutes, detectors.CallerMinute{Caller: "+15550100001", Minute: time.Now().Truncate(time.Minute), Calls: 42})
	if err := sink.Write(ctx, 7, &rows); err != nil {
		log.Fatal(err) // do not commit the offsets
	}
	rows.Reset()
	// … commit the partition's offsets here.
}

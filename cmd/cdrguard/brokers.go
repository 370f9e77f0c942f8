package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
)

// waitForBrokers waits until the brokers answer a metadata request, for
// at most kafka.connect_timeout, as `cdrguard run` does: a process
// started before its brokers waits, one pointed at the wrong brokers
// exits non-zero with a message naming them and the key.
func waitForBrokers(ctx context.Context, kc *kafkaio.Client, cfg runConfig, log *zap.Logger) error {
	start := time.Now()
	wait := 500 * time.Millisecond
	for {
		_, err := kc.Partitions(ctx, cfg.Kafka.AlertsTopic)
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) >= cfg.Kafka.ConnectTimeout {
			return fmt.Errorf("kafka.brokers %s unreachable for %v (kafka.connect_timeout): %w",
				strings.Join(cfg.Kafka.Brokers, ","), cfg.Kafka.ConnectTimeout, err)
		}
		log.Warn("waiting for the Kafka brokers", zap.Strings("brokers", cfg.Kafka.Brokers), zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

package hooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
)

// KafkaElector elects the retry runner through a Kafka consumer group on
// a one-partition topic (the held topic): the member the coordinator
// assigns partition 0 leads. Nothing is read or committed; the group only
// serves as a lease that the coordinator hands to one member at a time.
// A rebalance (a member joining, leaving or expelled) ends every member's
// generation, and the coordinator starts the next one only once every
// member has rejoined, which a leader does only after its term's
// attempts are over (Generation.Start functions are waited for); a
// member that does not rejoin within the rebalance timeout is expelled.
type KafkaElector struct {
	cfg kafka.ConsumerGroupConfig
	log *zap.Logger
}

// NewKafkaElector returns the elector of group on topic (its partition 0).
// log may be nil.
func NewKafkaElector(kc *kafkaio.Client, group, topic string, log *zap.Logger) (*KafkaElector, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg := kafka.ConsumerGroupConfig{
		ID: group, Brokers: kc.Conn.Brokers, Dialer: kc.Dialer, Topics: []string{topic},
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
		JoinGroupBackoff: time.Second, WatchPartitionChanges: false,
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("retry election group %s: %w", group, err)
	}
	// drainGrace must stay below the rebalance timeout (see lead).
	if drainGrace >= cfg.RebalanceTimeout {
		return nil, fmt.Errorf("retry election group %s: drain grace %v must be below the rebalance timeout %v", group, drainGrace, cfg.RebalanceTimeout)
	}
	return &KafkaElector{cfg: cfg, log: log}, nil
}

// Elect implements Elector.
func (k *KafkaElector) Elect(ctx context.Context, lead func(term context.Context)) error {
	cg, err := kafka.NewConsumerGroup(k.cfg)
	if err != nil {
		return fmt.Errorf("retry election group %s: %w", k.cfg.ID, err)
	}
	defer cg.Close() // leaves the group: another member is elected at once
	topic := k.cfg.Topics[0]
	for {
		gen, err := cg.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, kafka.ErrGroupClosed):
			return fmt.Errorf("retry election group %s closed", k.cfg.ID)
		case err != nil:
			// Joining failed (coordinator moving, broker away): the
			// group tries again after its backoff.
			k.log.Warn("retry election: cannot join the group, retrying", zap.String("group", k.cfg.ID), zap.Error(err))
			continue
		}
		leader := false
		for _, p := range gen.Assignments[topic] {
			leader = leader || p.ID == 0
		}
		k.log.Debug("retry election generation", zap.String("group", k.cfg.ID), zap.Int32("generation", gen.ID), zap.Bool("leader", leader))
		if leader {
			gen.Start(lead)
		}
	}
}

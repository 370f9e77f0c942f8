#!/usr/bin/env bash
# deploy/local/demo.sh — the whole product on this machine (make demo):
# the local Kafka and ClickHouse, yesterday's synthetic carrier day
# streamed through `cdrguard run` into ClickHouse with suspension webhooks
# to a local demo receiver, and the console with a demo user. Ctrl-C stops
# what it started (the services stay up: make services-down stops them).
set -Eeuo pipefail
cd "$(dirname "$0")/../.."
DIR=.run/demo
mkdir -p "$DIR"
log() { printf '[demo] %s\n' "$*" >&2; }

deploy/local/services.sh up
go build -o bin/cdrguard ./cmd/cdrguard
BIN=bin/cdrguard

STAMP=$(date +%s)
TOPIC="demo-cdrs-$STAMP"
DB="cdrguard_demo_$STAMP"
DAY=$(date -u -d yesterday +%F)
RECEIVER_PORT=${DEMO_RECEIVER_PORT:-8099}
CONSOLE=${DEMO_CONSOLE:-127.0.0.1:8080}
API=${DEMO_API:-127.0.0.1:8086}

# Secrets of the demo, made fresh each time and kept in $DIR.
secret="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
printf '%s\n' "$secret" > "$DIR/receiver.secret"
head -c 24 /dev/urandom | base64 | tr -d '\n=+/' > "$DIR/api.token"
head -c 48 /dev/urandom | base64 | tr -d '\n' > "$DIR/session.key"
password=$(head -c 12 /dev/urandom | base64 | tr -d '\n=+/')
hash=$(printf '%s\n' "$password" | "$BIN" console hash-password)
cat > "$DIR/users.yaml" <<USERS
users:
  - {name: demo, role: supervisor, password_hash: "$hash"}
USERS
chmod 600 "$DIR"/*

cat > "$DIR/demo.yaml" <<CONFIG
kafka:
  brokers: ["127.0.0.1:9092"]
  topic: $TOPIC
  group: demo-$STAMP
  alerts_topic: $TOPIC.alerts
detect:
  idle_release: 5s
clickhouse:
  dsn: clickhouse://127.0.0.1:9000/$DB
  store_cdrs: true
hooks:
  endpoints:
    - name: demo-receiver
      url: http://127.0.0.1:$RECEIVER_PORT/hooks/cdrguard
      secret_file: $PWD/$DIR/receiver.secret
      actions: [suspend, release]
      mode: enforce
      budget: {requests: 20, per: 10m}
  api:
    listen: $API
    tokens_file: $PWD/$DIR/api.token
console:
  listen: $CONSOLE
  users_file: $PWD/$DIR/users.yaml
  session_key_file: $PWD/$DIR/session.key
  release_api:
    url: http://$API
    token_file: $PWD/$DIR/api.token
metrics:
  listen: 127.0.0.1:9464
log:
  level: warn
  format: console
CONFIG

pids=()
cleanup() {
  log "stopping"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

DEMO_SECRET="$secret" python3 deploy/local/demo_receiver.py "$RECEIVER_PORT" > "$DIR/receiver.log" 2>&1 &
pids+=($!)
log "generating $DAY into Kafka topic $TOPIC"
"$BIN" gen --date "$DAY" --kafka-brokers 127.0.0.1:9092 --topic "$TOPIC" --partitions 3 >&2
"$BIN" run --config "$DIR/demo.yaml" > "$DIR/run.log" 2>&1 &
pids+=($!)
"$BIN" console --config "$DIR/demo.yaml" > "$DIR/console.log" 2>&1 &
pids+=($!)

cat >&2 <<DONE

  cdrguard demo is running.

    console      http://$CONSOLE/   user: demo   password: $password
    metrics      http://127.0.0.1:9464/metrics   (readiness: /readyz)
    webhooks     $DIR/receiver.log  (the demo suspension system: one line per signed request)
    logs         $DIR/run.log, $DIR/console.log
    ClickHouse   database $DB     clickhouse-client --port 9000 -d $DB

  Alerts appear in the console within a minute or two, as the day streams
  through. Ctrl-C stops the demo.

DONE
wait -n "${pids[@]}"
log "a demo process exited; see $DIR/*.log"

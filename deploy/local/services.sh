#!/usr/bin/env bash
# deploy/local/services.sh — local single-node Kafka (KRaft) + ClickHouse for
# development and CI.  No Docker, no systemd: both servers run as plain
# background processes whose state lives in one scratch directory.
#
# Usage:
#   deploy/local/services.sh up              # install if needed, start, wait until ready
#   deploy/local/services.sh down [--purge]  # stop; --purge also deletes all data/logs
#   deploy/local/services.sh purge           # same as: down --purge
#   deploy/local/services.sh status          # exit 0 only if every selected service is up
#   deploy/local/services.sh logs [kafka|clickhouse] [N]   # tail the server logs
#   deploy/local/services.sh env             # print connection settings as shell exports
#
# Environment knobs (defaults in brackets):
#   CDRGUARD_SCRATCH       scratch dir for data, logs, pid files, configs [/tmp/cdrguard-services]
#   SERVICES               which services to act on ["kafka clickhouse chdb chromium"]
#                          (chdb: no server, a venv with chdb-core, an in-process
#                          modern ClickHouse the tests run modern DDL and queries on;
#                          chromium: Debian's browser for the console's browser test)
#   CHDB_VERSION           chdb-core version from PyPI [26.9.0]
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13 version from Maven Central [4.1.1]
#   KAFKA_HOST             listen address [127.0.0.1]
#   KAFKA_PORT             PLAINTEXT (client) port [9092]
#   KAFKA_CONTROLLER_PORT  KRaft controller port [9093]
#   KAFKA_SASL_PORT        SASL_PLAINTEXT port (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) [9094]
#   KAFKA_SSL_PORT         SASL_SSL port (same mechanisms, TLS with a throwaway CA) [9095]
#   KAFKA_SASL_USER        test-only SASL user [cdrguard]
#   KAFKA_SASL_PASSWORD    its password, [A-Za-z0-9._-] only [cdrguard-test-secret]
#   KAFKA_HEAP_OPTS        broker JVM heap [-Xms256m -Xmx1g]
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable [false]
#   CLICKHOUSE_HOST        listen address [127.0.0.1]
#   CLICKHOUSE_TCP_PORT    native protocol port [9000]
#   CLICKHOUSE_HTTP_PORT   HTTP port [8123]
#   CLICKHOUSE_TIMEZONE    server time zone [UTC]
#   READY_TIMEOUT          seconds to wait for each service to become ready [180]
#   MVN                    maven command [mvn]; JAVA_HOME is honoured for java
#
# Data survives `down`/`up`; only `down --purge` / `purge` deletes it.

set -Eeuo pipefail
# Never fail silently: name the command that tripped `set -e`.
trap 'printf "[services] ERROR: command failed (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

# ----------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRATCH="${CDRGUARD_SCRATCH:-/tmp/cdrguard-services}"
SERVICES="${SERVICES:-kafka clickhouse chdb chromium}"
READY_TIMEOUT="${READY_TIMEOUT:-180}"

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
KAFKA_AUTO_CREATE_TOPICS="${KAFKA_AUTO_CREATE_TOPICS:-false}"
KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-9094}"
KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-9095}"
# Fixed, test-only credentials: this broker is for development and CI only.
KAFKA_SASL_USER="${KAFKA_SASL_USER:-cdrguard}"
KAFKA_SASL_PASSWORD="${KAFKA_SASL_PASSWORD:-cdrguard-test-secret}"

CLICKHOUSE_HOST="${CLICKHOUSE_HOST:-127.0.0.1}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
CLICKHOUSE_TIMEZONE="${CLICKHOUSE_TIMEZONE:-UTC}"

MVN="${MVN:-mvn}"
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA="java"
fi

KAFKA_DIR="$SCRATCH/kafka"          # server.properties, log4j2 configs, classpath, pid
KAFKA_DATA="$KAFKA_DIR/data"        # log.dirs (topic data + __cluster_metadata)
KAFKA_LOGS="$KAFKA_DIR/logs"        # server.log (log4j2), stdout.log (JVM stdout/stderr)
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_CP="$KAFKA_DIR/classpath"
KAFKA_TLS="$KAFKA_DIR/tls"          # throwaway CA + server certificate for the SASL_SSL listener
KAFKA_CA_FILE="$KAFKA_TLS/ca.crt"   # what clients trust (services.sh env: KAFKA_CA_FILE)
KAFKA_SCRAM_STAMP="$KAFKA_DIR/scram-users"  # "user sha256(password)" the storage has SCRAM credentials for
KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"

CH_DIR="$SCRATCH/clickhouse"        # config.xml, users.xml, pid
CH_DATA="$CH_DIR/data"              # <path>: tables, metadata
CH_LOGS="$CH_DIR/logs"              # clickhouse-server.log, .err.log, stdout.log
CH_PID="$CH_DIR/clickhouse.pid"

# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------
log()  { printf '[services] %s\n' "$*" >&2; }
die()  { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }
now()  { date +%s; }
now_ms() { date +%s%3N; }
# since T0_MS -> elapsed time as seconds with one decimal, e.g. "6.3s"
since() { local d=$(( $(now_ms) - $1 )); printf '%d.%ds' $(( d / 1000 )) $(( d % 1000 / 100 )); }

# wants SERVICE -> true if SERVICE is in $SERVICES
wants() { [[ " $SERVICES " == *" $1 "* ]]; }

# port_open HOST PORT -> true if something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# pid_alive PIDFILE MARKER -> true if the pid in PIDFILE is a live process
# whose command line contains MARKER (guards against stale pids being reused).
pid_alive() {
  local pidfile=$1 marker=$2 pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

# pid_running PIDFILE -> true if the pid in PIDFILE is a live (non-zombie)
# process.  Used right after launching, when the child may not have exec'd
# into the server yet (so its command line is still the script's).
pid_running() {
  local pid state
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ "$state" != Z ]]
}

# show_log_tail NAME FILE... -> print the last $LOG_TAIL_LINES (40) lines of each existing file.
show_log_tail() {
  local name=$1 f; shift
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    printf '\n----- %s: last %s lines of %s -----\n' "$name" "${LOG_TAIL_LINES:-40}" "$f" >&2
    tail -n "${LOG_TAIL_LINES:-40}" "$f" >&2
  done
  printf -- '-----\n' >&2
}

# stop_pid NAME PIDFILE MARKER GRACE_SECONDS -> SIGTERM, wait, then SIGKILL.
# MARKER is the server's generated config path (unique to this scratch dir);
# if the pid file is missing or stale, a server process whose command line
# contains MARKER is still found and stopped (e.g. after a crashed script).
stop_pid() {
  local name=$1 pidfile=$2 marker=$3 grace=$4 pid pids deadline
  if pid_alive "$pidfile" "$marker"; then
    pids=$(cat "$pidfile")
  else
    pids=$(pgrep -f -- "$marker" 2>/dev/null | grep -vx "$$" || true)
  fi
  rm -f "$pidfile"
  if [[ -z "$pids" ]]; then
    log "$name: not running"
    return 0
  fi
  for pid in $pids; do
    log "$name: stopping (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(now) + grace ))
    while kill -0 "$pid" 2>/dev/null; do
      if (( $(now) >= deadline )); then
        log "$name: did not stop within ${grace}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
        break
      fi
      sleep 0.5
    done
  done
  log "$name: stopped"
}

# apt_install PKG... -> install Debian packages (runs apt-get update once).
# Output goes to $SCRATCH/apt.log and is shown only on failure.  Package
# maintainer scripts are prevented from starting services (clickhouse-server's
# postinst would otherwise try to start a system instance on port 9000).
APT_UPDATED=0
apt_install() {
  local sudo="" aptlog="$SCRATCH/apt.log" policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
  (( EUID == 0 )) || sudo="sudo"
  mkdir -p "$SCRATCH"
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from deploy/local/services.sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    made_policy=1
  fi
  if (( APT_UPDATED == 0 )); then
    log "apt-get update"
    $sudo apt-get update -qq >>"$aptlog" 2>&1 || rc=$?
    APT_UPDATED=1
  fi
  if (( rc == 0 )); then
    log "apt-get install $* (log: $aptlog)"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >>"$aptlog" 2>&1 || rc=$?
  fi
  (( made_policy )) && $sudo rm -f "$policy"
  if (( rc != 0 )); then
    tail -n 40 "$aptlog" >&2
    die "apt-get failed (exit $rc) installing: $*"
  fi
}

# ----------------------------------------------------------------------------
# Kafka
# ----------------------------------------------------------------------------
kafka_ensure_tools() {
  command -v "$JAVA" >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
  command -v "$MVN"  >/dev/null 2>&1 || apt_install maven
  command -v openssl >/dev/null 2>&1 || apt_install openssl
}

# The SASL listeners' credentials end up in server.properties (JAAS) and in
# StorageTool/ConfigCommand arguments; keep them free of quoting problems.
kafka_check_credentials() {
  [[ "$KAFKA_SASL_USER" =~ ^[A-Za-z0-9._-]+$ ]] || die "kafka: KAFKA_SASL_USER '$KAFKA_SASL_USER' may only use A-Z a-z 0-9 . _ -"
  [[ "$KAFKA_SASL_PASSWORD" =~ ^[A-Za-z0-9._-]+$ ]] || die "kafka: KAFKA_SASL_PASSWORD may only use A-Z a-z 0-9 . _ -"
}

# The subjectAltName of the server certificate: 127.0.0.1 and localhost, plus
# KAFKA_HOST when it is something else.
kafka_cert_san() {
  local san="IP:127.0.0.1,DNS:localhost"
  case $KAFKA_HOST in
    127.0.0.1|localhost) ;;
    *[!0-9.]*) san+=",DNS:$KAFKA_HOST" ;;
    *) san+=",IP:$KAFKA_HOST" ;;
  esac
  echo "$san"
}

# A throwaway CA and a server certificate signed by it, for the SASL_SSL
# listener (PEM, which Kafka reads directly: ssl.keystore.type=PEM).  Made
# once and kept; the CA is remade only when it expires within 30 days, the
# server certificate also when KAFKA_HOST (its subjectAltName) changes.
kafka_ensure_certs() {
  local tls=$KAFKA_TLS san; san=$(kafka_cert_san)
  mkdir -p "$tls"
  local ca_ok=0 srv_ok=0
  if [[ -s "$tls/ca.key" && -s "$tls/ca.crt" ]] && openssl x509 -noout -checkend 2592000 -in "$tls/ca.crt" >/dev/null 2>&1; then
    ca_ok=1
  fi
  if (( ca_ok )) && [[ -s "$tls/server.pem" && -s "$tls/server.crt" && "$(cat "$tls/server.san" 2>/dev/null)" == "$san" ]] \
     && [[ ! "$tls/ca.crt" -nt "$tls/server.crt" ]] \
     && openssl x509 -noout -checkend 2592000 -in "$tls/server.crt" >/dev/null 2>&1; then
    srv_ok=1
  fi
  (( srv_ok )) && return 0
  local t0; t0=$(now_ms)
  cat > "$tls/openssl.cnf" <<EOF
# generated by deploy/local/services.sh — throwaway test CA, never trust it elsewhere
[req]
distinguished_name = dn
prompt = no
[dn]
CN = cdrguard local test CA (throwaway)
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  (
    umask 077
    cd "$tls"
    if (( ! ca_ok )); then
      openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 -config openssl.cnf -extensions v3_ca \
        -keyout ca.key -out ca.crt
    fi
    openssl req -new -newkey rsa:2048 -nodes -sha256 -config openssl.cnf -subj "/CN=localhost" \
      -keyout server.key -out server.csr
    openssl x509 -req -sha256 -days 3650 -in server.csr -CA ca.crt -CAkey ca.key \
      -set_serial "0x$(openssl rand -hex 16)" -extfile openssl.cnf -extensions v3_server -out server.crt
    # Kafka PEM keystore: unencrypted PKCS#8 key, then the certificate chain.
    cat server.key server.crt ca.crt > server.pem
    rm -f server.csr
    chmod 644 ca.crt server.crt
  ) >"$KAFKA_LOGS/certs.log" 2>&1 || { cat "$KAFKA_LOGS/certs.log" >&2; die "kafka: cannot make the test certificates in $tls"; }
  echo "$san" > "$tls/server.san"
  local what="a server certificate"
  (( ca_ok )) || what="a throwaway CA and $what"
  log "kafka: made $what for $san in $(since "$t0") (CA: $KAFKA_CA_FILE)"
}

# Resolve the broker's runtime classpath with Maven (jars stay in ~/.m2).
# Cached in $KAFKA_CP; re-resolved when the version or the POM changes or a
# jar has disappeared from ~/.m2.
kafka_resolve_classpath() {
  local stamp="$KAFKA_CP.version" ok=1 jar jars=()
  if [[ -s "$KAFKA_CP" && -f "$stamp" && "$(cat "$stamp")" == "$KAFKA_VERSION" && ! "$KAFKA_POM" -nt "$KAFKA_CP" ]]; then
    IFS=':' read -r -a jars < "$KAFKA_CP" || true   # no trailing newline -> read returns 1
    for jar in "${jars[@]}"; do [[ -f "$jar" ]] || { ok=0; break; }; done
    (( ok )) && return 0
  fi
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and dependencies from Maven Central"
  local t0; t0=$(now_ms)
  if ! "$MVN" -q -B -f "$KAFKA_POM" -Dkafka.version="$KAFKA_VERSION" \
        dependency:build-classpath -Dmdep.outputFile="$KAFKA_CP.tmp" >"$KAFKA_LOGS/maven.log" 2>&1; then
    tail -n 40 "$KAFKA_LOGS/maven.log" >&2
    die "kafka: maven could not resolve kafka_2.13:$KAFKA_VERSION (full log: $KAFKA_LOGS/maven.log)"
  fi
  mv "$KAFKA_CP.tmp" "$KAFKA_CP"
  echo "$KAFKA_VERSION" > "$stamp"
  log "kafka: classpath resolved in $(since "$t0")"
}

kafka_write_config() {
  # Broker logging: INFO to a size-rolled file in scratch, nothing on stdout.
  cat > "$KAFKA_DIR/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by deploy/local/services.sh -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="server" fileName="$KAFKA_LOGS/server.log"
                 filePattern="$KAFKA_LOGS/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="100MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="server"/></Root>
    <!-- per-request logging is very noisy at INFO/DEBUG -->
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.network.RequestChannel\$" level="WARN"/>
  </Loggers>
</Configuration>
EOF
  # Command-line tools (StorageTool, TopicCommand): warnings to stderr only.
  cat > "$KAFKA_DIR/log4j2-tools.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="stderr"/></Root></Loggers>
</Configuration>
EOF
  cat > "$KAFKA_DIR/server.properties" <<EOF
# generated by deploy/local/services.sh — single-node KRaft (combined broker+controller)
process.roles=broker,controller
node.id=1
# Dynamic KRaft quorum with this node as the only voter (formatted with --standalone).
controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
# PLAINTEXT for clients, the controller and between brokers; SASL_PLAINTEXT and
# SASL_SSL only to test clients' TLS/SASL settings against a real broker.
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://$KAFKA_HOST:$KAFKA_SASL_PORT,SASL_SSL://$KAFKA_HOST:$KAFKA_SSL_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://$KAFKA_HOST:$KAFKA_SASL_PORT,SASL_SSL://$KAFKA_HOST:$KAFKA_SSL_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

# SASL (test-only user $KAFKA_SASL_USER): PLAIN users are listed in the JAAS
# config; SCRAM credentials live in the cluster metadata (added by StorageTool
# format --add-scram, or by ConfigCommand for storage formatted before that).
# No authorizer: an authenticated user may do everything.
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
# TLS on SASL_SSL: PEM key + chain made by kafka_ensure_certs; no client certificates.
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$KAFKA_TLS/server.pem
listener.name.sasl_ssl.ssl.client.auth=none

log.dirs=$KAFKA_DATA

# Single node: every internal topic and default must use replication factor 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Topics must be created explicitly (with the partition count the code expects);
# a typo'd topic name fails loudly instead of silently creating a 1-partition topic.
auto.create.topics.enable=$KAFKA_AUTO_CREATE_TOPICS
delete.topic.enable=true

# Consumer groups rebalance immediately (default 3s delay only slows tests down).
group.initial.rebalance.delay.ms=0
# Write offset commits to __consumer_offsets without the default 5 ms batching
# linger: synchronous per-message commits (kafka-go Reader with
# CommitInterval=0, gen.CommitOffsets) are ~6.5 ms each otherwise.
group.coordinator.append.linger.ms=0

# Shared 2-core dev/CI machines: when other jobs starve the JVM of CPU, the
# controller's heartbeat processing can stall >9 s and it then FENCES its own
# broker (clients see "[8] Broker Not Available" / partitions without leader
# for ~10 s).  A longer session timeout and fewer no-op metadata writes avoid it.
broker.session.timeout.ms=30000
# After an unclean stop (kill -9, a machine reset) the metadata log still holds
# this broker's old, unfenced registration; the restarted controller refuses the
# new one (DuplicateBrokerRegistrationException) until that session times out.
# The broker must keep retrying for longer than the session timeout, or it gives
# up and exits (the default, 60 s, loses that race against a 60 s session).
initial.broker.registration.timeout.ms=240000
metadata.max.idle.interval.ms=5000

# Small machine: modest thread pools.
num.network.threads=2
num.io.threads=4
log.retention.hours=168
EOF
}

# kafka_java MAINCLASS ARGS... -> run a Kafka tool in the foreground.  C1-only
# JIT + serial GC: these JVMs live for a second or two, so this starts faster.
kafka_java() {
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2-tools.xml" \
    -cp "$(cat "$KAFKA_CP")" "$@"
}

kafka_format() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  local cluster_id
  if [[ -s "$KAFKA_DIR/cluster.id" ]]; then
    cluster_id=$(cat "$KAFKA_DIR/cluster.id")
  else
    cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid | tail -n 1)
    echo "$cluster_id" > "$KAFKA_DIR/cluster.id"
  fi
  log "kafka: formatting storage (cluster id $cluster_id, SCRAM user $KAFKA_SASL_USER)"
  rm -f "$KAFKA_SCRAM_STAMP"
  kafka_java kafka.tools.StorageTool format --standalone --ignore-formatted \
    --cluster-id "$cluster_id" --config "$KAFKA_DIR/server.properties" \
    --add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
    >"$KAFKA_LOGS/format.log" 2>&1 \
    || { cat "$KAFKA_LOGS/format.log" >&2; die "kafka: storage format failed"; }
  kafka_scram_stamp > "$KAFKA_SCRAM_STAMP"
}

# kafka_scram_stamp -> "user sha256(password)": which SCRAM credentials the
# storage holds.  Written when they are added (at format time or by
# kafka_ensure_scram_users), so a changed user/password is noticed.
kafka_scram_stamp() {
  printf '%s %s\n' "$KAFKA_SASL_USER" "$(printf '%s' "$KAFKA_SASL_PASSWORD" | sha256sum | cut -d' ' -f1)"
}

# Storage formatted by an older services.sh (before the SASL listeners) has
# no SCRAM credentials; add them through the Admin API on the PLAINTEXT
# listener (AlterUserScramCredentials, via ConfigCommand) once the broker is
# up.  Data is kept.  Skipped when the stamp says they are already there.
kafka_ensure_scram_users() {
  [[ "$(cat "$KAFKA_SCRAM_STAMP" 2>/dev/null)" == "$(kafka_scram_stamp)" ]] && return 0
  log "kafka: adding SCRAM-SHA-256/512 credentials for $KAFKA_SASL_USER (storage formatted without them, or user/password changed)"
  local t0 mech ok; t0=$(now_ms)
  # One mechanism per request: the broker rejects two changes to one user's
  # credentials in the same AlterUserScramCredentials request.
  for mech in SCRAM-SHA-256 SCRAM-SHA-512; do
    ok=0
    for _ in 1 2 3; do
      if kafka_java kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
           --alter --entity-type users --entity-name "$KAFKA_SASL_USER" \
           --add-config "$mech=[password=$KAFKA_SASL_PASSWORD]" >>"$KAFKA_LOGS/probe.log" 2>&1; then
        ok=1; break
      fi
      sleep 1
    done
    if (( ! ok )); then
      show_log_tail kafka "$KAFKA_LOGS/probe.log"
      die "kafka: could not add $mech credentials for $KAFKA_SASL_USER (broker left running; see above)"
    fi
  done
  kafka_scram_stamp > "$KAFKA_SCRAM_STAMP"
  log "kafka: SCRAM credentials added in $(since "$t0")"
}

# Readiness: the broker has logged "Kafka Server started" (in KRaft it logs
# that only once it is registered with the controller and unfenced), and a
# real client call works: TopicCommand creates the 1-partition topic
# `cdrguard-ready-probe` (or finds it, on later starts).  The log check is cheap
# and keeps us from launching probe JVMs that cannot succeed yet, which matters
# when the machine is busy.  KAFKA_LOG_OFFSET = size of server.log before this
# start, so lines from earlier runs are ignored.
KAFKA_LOG_OFFSET=0
kafka_probe() {
  port_open "$KAFKA_HOST" "$KAFKA_PORT" || return 1
  port_open "$KAFKA_HOST" "$KAFKA_SASL_PORT" || return 1
  port_open "$KAFKA_HOST" "$KAFKA_SSL_PORT" || return 1
  # (process substitution + `|| true`, not a pipe: grep -q exits at the first
  # match, and tail's SIGPIPE would otherwise fail the pipeline / fire the ERR trap)
  grep -q "Kafka Server started" \
    < <(tail -c +"$(( KAFKA_LOG_OFFSET + 1 ))" "$KAFKA_LOGS/server.log" 2>/dev/null || true) \
    || return 1
  kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
    --create --if-not-exists --topic cdrguard-ready-probe --partitions 1 --replication-factor 1 \
    >>"$KAFKA_LOGS/probe.log" 2>&1
}

kafka_up() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  if pid_alive "$KAFKA_PID" "$KAFKA_DIR/server.properties"; then
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      log "kafka: already running (pid $(cat "$KAFKA_PID")) on $KAFKA_HOST:$KAFKA_PORT"
      if ! port_open "$KAFKA_HOST" "$KAFKA_SASL_PORT" || ! port_open "$KAFKA_HOST" "$KAFKA_SSL_PORT"; then
        log "kafka: warning: started by an older services.sh, without the SASL listeners on $KAFKA_SASL_PORT/$KAFKA_SSL_PORT;"
        log "kafka:   to add them (data is kept): SERVICES=kafka $0 down && SERVICES=kafka $0 up"
      fi
      return 0
    fi
    log "kafka: process running but port not open yet; waiting"
  else
    rm -f "$KAFKA_PID"
    port_open "$KAFKA_HOST" "$KAFKA_PORT" && \
      die "kafka: $KAFKA_HOST:$KAFKA_PORT is already in use by another process (not started by this script)"
    local p
    for p in "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT" "$KAFKA_SSL_PORT"; do
      port_open "$KAFKA_HOST" "$p" && \
        die "kafka: $KAFKA_HOST:$p is already in use by another process"
    done
    kafka_check_credentials
    kafka_ensure_tools
    kafka_resolve_classpath
    kafka_ensure_certs
    kafka_write_config
    kafka_format
    KAFKA_LOG_OFFSET=$(stat -c %s "$KAFKA_LOGS/server.log" 2>/dev/null || echo 0)
    log "kafka: starting $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (logs: $KAFKA_LOGS/server.log)"
    # setsid: own session, so the broker outlives the calling shell / CI step.
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is intentionally word-split
    setsid nohup "$JAVA" $KAFKA_HEAP_OPTS -server \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.xml" -Dkafka.logs.dir="$KAFKA_LOGS" \
      -cp "$(cat "$KAFKA_CP")" kafka.Kafka "$KAFKA_DIR/server.properties" \
      </dev/null >"$KAFKA_LOGS/stdout.log" 2>&1 9>&- &
    echo $! > "$KAFKA_PID"
  fi

  local t0 deadline; t0=$(now_ms); deadline=$(( $(now) + READY_TIMEOUT ))
  : > "$KAFKA_LOGS/probe.log"
  local told_stale=0
  until kafka_probe; do
    if (( ! told_stale )) && grep -q DuplicateBrokerRegistrationException \
         < <(tail -c +"$(( KAFKA_LOG_OFFSET + 1 ))" "$KAFKA_LOGS/server.log" 2>/dev/null || true); then
      log "kafka: the last broker was stopped uncleanly; waiting for its session (30 s) to expire before it can register again"
      told_stale=1
    fi
    if ! pid_running "$KAFKA_PID"; then
      show_log_tail kafka "$KAFKA_LOGS/stdout.log" "$KAFKA_LOGS/server.log"
      rm -f "$KAFKA_PID"
      die "kafka: broker process exited during startup"
    fi
    if (( $(now) >= deadline )); then
      show_log_tail kafka "$KAFKA_LOGS/stdout.log" "$KAFKA_LOGS/server.log" "$KAFKA_LOGS/probe.log"
      die "kafka: not ready after ${READY_TIMEOUT}s (left running as pid $(cat "$KAFKA_PID"); see logs above, stop it with: $0 down)"
    fi
    sleep 1
  done
  kafka_ensure_scram_users
  kafka_warm_offsets_topic
  log "kafka: ready after $(since "$t0") (pid $(cat "$KAFKA_PID"))"
}

# On a fresh cluster __consumer_offsets does not exist until the first
# FindCoordinator request; until it is created and loaded, group calls fail
# with "Group Coordinator Not Available" (kafka-go's ConsumerGroup.Next returns
# that error to the caller).  Describing a (non-existent) group issues
# FindCoordinator, which makes the broker create the topic; retry until its
# partition directory exists.
kafka_warm_offsets_topic() {
  [[ -d "$KAFKA_DATA/__consumer_offsets-0" ]] && return 0
  local bs="$KAFKA_HOST:$KAFKA_PORT"
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kafka_java org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$bs" \
      --describe --group cdrguard-warmup >>"$KAFKA_LOGS/probe.log" 2>&1 || true
    [[ -d "$KAFKA_DATA/__consumer_offsets-0" ]] && return 0
    sleep 1
  done
  log "kafka: warning: __consumer_offsets not created yet (first consumer-group call may need a retry)"
}

kafka_down() { stop_pid kafka "$KAFKA_PID" "$KAFKA_DIR/server.properties" 60; }

kafka_status() {
  if pid_alive "$KAFKA_PID" "$KAFKA_DIR/server.properties" && port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    echo "kafka:      running  pid $(cat "$KAFKA_PID")  $KAFKA_HOST:$KAFKA_PORT  version $(cat "$KAFKA_CP.version" 2>/dev/null || echo '?')"
    local l
    for l in "SASL_PLAINTEXT $KAFKA_SASL_PORT" "SASL_SSL $KAFKA_SSL_PORT"; do
      if port_open "$KAFKA_HOST" "${l#* }"; then
        echo "            ${l% *} $KAFKA_HOST:${l#* }"
      else
        echo "            ${l% *} $KAFKA_HOST:${l#* } not listening (started by an older services.sh? down + up adds it)"
      fi
    done
  elif pid_alive "$KAFKA_PID" "$KAFKA_DIR/server.properties"; then
    echo "kafka:      starting pid $(cat "$KAFKA_PID")  (port $KAFKA_PORT not open yet)"; return 1
  else
    echo "kafka:      stopped"; return 1
  fi
}

# ----------------------------------------------------------------------------
# ClickHouse
# ----------------------------------------------------------------------------
CH_SERVER=""
ch_ensure_installed() {
  # The Debian package puts the server in /usr/sbin, which may not be on PATH.
  CH_SERVER=$(command -v clickhouse-server 2>/dev/null || true)
  [[ -z "$CH_SERVER" && -x /usr/sbin/clickhouse-server ]] && CH_SERVER=/usr/sbin/clickhouse-server
  if [[ -z "$CH_SERVER" ]] || ! command -v clickhouse-client >/dev/null 2>&1; then
    apt_install clickhouse-server clickhouse-client
    CH_SERVER=$(command -v clickhouse-server 2>/dev/null || echo /usr/sbin/clickhouse-server)
  fi
  [[ -x "$CH_SERVER" ]] || die "clickhouse: clickhouse-server not found after install"
}

ch_write_config() {
  cat > "$CH_DIR/config.xml" <<EOF
<?xml version="1.0"?>
<!-- generated by deploy/local/services.sh -->
<yandex>
  <logger>
    <level>information</level>
    <log>$CH_LOGS/clickhouse-server.log</log>
    <errorlog>$CH_LOGS/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>

  <listen_host>$CLICKHOUSE_HOST</listen_host>
  <tcp_port>$CLICKHOUSE_TCP_PORT</tcp_port>
  <http_port>$CLICKHOUSE_HTTP_PORT</http_port>

  <path>$CH_DATA/</path>
  <tmp_path>$CH_DIR/tmp/</tmp_path>
  <user_files_path>$CH_DIR/user_files/</user_files_path>
  <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
  <users_config>$CH_DIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>$CLICKHOUSE_TIMEZONE</timezone>

  <max_connections>1024</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>

  <!-- query_log is handy when debugging what the Go client sent. -->
  <query_log>
    <database>system</database>
    <table>query_log</table>
    <partition_by>toYYYYMM(event_date)</partition_by>
    <flush_interval_milliseconds>7500</flush_interval_milliseconds>
  </query_log>
</yandex>
EOF
  cat > "$CH_DIR/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- generated by deploy/local/services.sh: user "default", no password, localhost only -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
      <!-- record queries in system.query_log (see config.xml) -->
      <log_queries>1</log_queries>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks>
        <ip>::1</ip>
        <ip>127.0.0.1</ip>
      </networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
EOF
}

# Readiness: native protocol answers SELECT 1 and HTTP answers /ping.
ch_probe() {
  port_open "$CLICKHOUSE_HOST" "$CLICKHOUSE_TCP_PORT" || return 1
  [[ "$(clickhouse-client --host "$CLICKHOUSE_HOST" --port "$CLICKHOUSE_TCP_PORT" -q 'SELECT 1' 2>/dev/null)" == "1" ]] || return 1
  local reply
  reply=$(exec 3<>"/dev/tcp/$CLICKHOUSE_HOST/$CLICKHOUSE_HTTP_PORT" &&
          printf 'GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && cat <&3) 2>/dev/null || return 1
  [[ "$reply" == *"Ok."* ]]
}

ch_up() {
  mkdir -p "$CH_DATA" "$CH_LOGS" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas"
  if pid_alive "$CH_PID" "$CH_DIR/config.xml"; then
    if port_open "$CLICKHOUSE_HOST" "$CLICKHOUSE_TCP_PORT"; then
      log "clickhouse: already running (pid $(cat "$CH_PID")) on $CLICKHOUSE_HOST:$CLICKHOUSE_TCP_PORT"
      return 0
    fi
    log "clickhouse: process running but port not open yet; waiting"
  else
    rm -f "$CH_PID"
    local p
    for p in "$CLICKHOUSE_TCP_PORT" "$CLICKHOUSE_HTTP_PORT"; do
      port_open "$CLICKHOUSE_HOST" "$p" && \
        die "clickhouse: $CLICKHOUSE_HOST:$p is already in use by another process (not started by this script)"
    done
    ch_ensure_installed
    ch_write_config
    log "clickhouse: starting on $CLICKHOUSE_HOST:$CLICKHOUSE_TCP_PORT/$CLICKHOUSE_HTTP_PORT (logs: $CH_LOGS)"
    # Runs as the invoking user (root is fine for 18.16); cwd = scratch so
    # nothing is written elsewhere.
    (cd "$CH_DIR" && exec setsid nohup "$CH_SERVER" --config-file="$CH_DIR/config.xml" \
        </dev/null >"$CH_LOGS/stdout.log" 2>&1) 9>&- &
    echo $! > "$CH_PID"
  fi

  local t0 deadline; t0=$(now_ms); deadline=$(( $(now) + READY_TIMEOUT ))
  until ch_probe; do
    if ! pid_running "$CH_PID"; then
      show_log_tail clickhouse "$CH_LOGS/stdout.log" "$CH_LOGS/clickhouse-server.err.log" "$CH_LOGS/clickhouse-server.log"
      rm -f "$CH_PID"
      die "clickhouse: server process exited during startup"
    fi
    if (( $(now) >= deadline )); then
      show_log_tail clickhouse "$CH_LOGS/stdout.log" "$CH_LOGS/clickhouse-server.err.log" "$CH_LOGS/clickhouse-server.log"
      die "clickhouse: not ready after ${READY_TIMEOUT}s (left running as pid $(cat "$CH_PID"); see logs above, stop it with: $0 down)"
    fi
    sleep 0.5
  done
  log "clickhouse: $(clickhouse-client --host "$CLICKHOUSE_HOST" --port "$CLICKHOUSE_TCP_PORT" -q 'SELECT version()' 2>/dev/null) ready after $(since "$t0") (pid $(cat "$CH_PID"))"
}

ch_down() { stop_pid clickhouse "$CH_PID" "$CH_DIR/config.xml" 60; }

ch_status() {
  if pid_alive "$CH_PID" "$CH_DIR/config.xml" && port_open "$CLICKHOUSE_HOST" "$CLICKHOUSE_TCP_PORT"; then
    echo "clickhouse: running  pid $(cat "$CH_PID")  native $CLICKHOUSE_HOST:$CLICKHOUSE_TCP_PORT  http $CLICKHOUSE_HOST:$CLICKHOUSE_HTTP_PORT"
  elif pid_alive "$CH_PID" "$CH_DIR/config.xml"; then
    echo "clickhouse: starting pid $(cat "$CH_PID")  (port $CLICKHOUSE_TCP_PORT not open yet)"; return 1
  else
    echo "clickhouse: stopped"; return 1
  fi
}

# ----------------------------------------------------------------------------
# chdb: ClickHouse 26.x embedded in Python (PyPI chdb-core), in a venv
# ----------------------------------------------------------------------------
CHDB_VERSION="${CHDB_VERSION:-26.9.0}"
CHDB_VENV="$SCRATCH/chdb-venv"
chdb_ok() { "$CHDB_VENV/bin/python" -c 'import chdb' >/dev/null 2>&1 &&
            [[ "$(cat "$CHDB_VENV/.chdb-version" 2>/dev/null)" == "$CHDB_VERSION" ]]; }
chdb_up() {
  if chdb_ok; then log "chdb: chdb-core $CHDB_VERSION already installed in $CHDB_VENV"; return 0; fi
  local t0; t0=$(now_ms)
  command -v python3 >/dev/null 2>&1 || apt_install python3
  if [[ ! -x "$CHDB_VENV/bin/pip" ]]; then
    rm -rf "$CHDB_VENV"
    python3 -m venv "$CHDB_VENV" >>"$SCRATCH/chdb-install.log" 2>&1 || {
      apt_install python3-venv
      python3 -m venv "$CHDB_VENV" >>"$SCRATCH/chdb-install.log" 2>&1 || die "chdb: cannot create a venv in $CHDB_VENV (see $SCRATCH/chdb-install.log)"
    }
  fi
  log "chdb: installing chdb-core $CHDB_VERSION from PyPI into $CHDB_VENV"
  "$CHDB_VENV/bin/pip" install -q "chdb-core==$CHDB_VERSION" >>"$SCRATCH/chdb-install.log" 2>&1 ||
    die "chdb: pip install chdb-core==$CHDB_VERSION failed (see $SCRATCH/chdb-install.log)"
  echo "$CHDB_VERSION" > "$CHDB_VENV/.chdb-version"
  chdb_ok || die "chdb: chdb-core installed but 'import chdb' fails"
  log "chdb: ready after $(since "$t0")"
}
# chromium: Debian's headless browser for the console's browser test (no
# server: installed once, started by the test through chromedp).
CHROMIUM=/usr/bin/chromium
chromium_up() {
  if [[ -x $CHROMIUM ]]; then log "chromium: $("$CHROMIUM" --version 2>/dev/null | head -1) already installed"; return 0; fi
  local t0; t0=$(now_ms)
  apt_install chromium
  [[ -x $CHROMIUM ]] || die "chromium: installed but $CHROMIUM is missing"
  log "chromium: ready after $(since "$t0")"
}
chromium_status() {
  if [[ -x $CHROMIUM ]]; then echo "chromium:   installed $CHROMIUM"; else echo "chromium:   not installed"; return 1; fi
}

chdb_status() {
  if chdb_ok; then echo "chdb:       installed chdb-core $CHDB_VERSION  $CHDB_VENV/bin/python"
  else echo "chdb:       not installed"; return 1; fi
}

# ----------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------
cmd_up() {
  local s
  for s in $SERVICES; do
    case $s in kafka|clickhouse|chdb|chromium) ;; *) die "unknown service '$s' in SERVICES (known: kafka clickhouse chdb chromium)";; esac
  done
  mkdir -p "$SCRATCH"
  # ClickHouse first: it is quick, and Kafka's readiness wait dominates.
  if wants clickhouse; then ch_up; fi
  if wants kafka; then kafka_up; fi
  if wants chdb; then chdb_up; fi
  if wants chromium; then chromium_up; fi
}

cmd_down() {
  local purge=0
  for a in "$@"; do
    case $a in --purge) purge=1 ;; *) die "down: unknown option '$a'" ;; esac
  done
  if wants kafka; then kafka_down; fi
  if wants clickhouse; then ch_down; fi
  if (( purge )); then
    if wants kafka; then log "kafka: deleting $KAFKA_DIR"; rm -rf "$KAFKA_DIR"; fi
    if wants clickhouse; then log "clickhouse: deleting $CH_DIR"; rm -rf "$CH_DIR"; fi
    if wants chdb; then log "chdb: deleting $CHDB_VENV"; rm -rf "$CHDB_VENV"; fi
    rmdir "$SCRATCH" 2>/dev/null || true
  fi
}

cmd_status() {
  local rc=0
  if wants kafka; then kafka_status || rc=1; fi
  if wants clickhouse; then ch_status || rc=1; fi
  if wants chdb; then chdb_status || rc=1; fi
  if wants chromium; then chromium_status || rc=1; fi
  echo "scratch:    $SCRATCH"
  return $rc
}

cmd_logs() {
  local which=${1:-all}
  LOG_TAIL_LINES=${2:-50}
  if [[ $which == kafka || $which == all ]]; then
    show_log_tail kafka "$KAFKA_LOGS/server.log" "$KAFKA_LOGS/stdout.log" 2>&1
  fi
  if [[ $which == clickhouse || $which == all ]]; then
    show_log_tail clickhouse "$CH_LOGS/clickhouse-server.log" "$CH_LOGS/clickhouse-server.err.log" 2>&1
  fi
}

cmd_env() {
  # The names the binary and the tests read (nothing else reads these).
  cat <<EOF
# cdrguard run/load/hooks/console: the brokers and the ClickHouse DSN
export CDRGUARD_KAFKA_BROKERS=$KAFKA_HOST:$KAFKA_PORT
export CDRGUARD_CLICKHOUSE=clickhouse://$CLICKHOUSE_HOST:$CLICKHOUSE_TCP_PORT/default
# the tests: broker, ClickHouse native and HTTP addresses
export CDRGUARD_KAFKA=$KAFKA_HOST:$KAFKA_PORT
export CDRGUARD_CLICKHOUSE_ADDR=$CLICKHOUSE_HOST:$CLICKHOUSE_TCP_PORT
export CDRGUARD_CLICKHOUSE_HTTP=$CLICKHOUSE_HOST:$CLICKHOUSE_HTTP_PORT
# the SASL/TLS tests (pipeline/kafkaio)
export KAFKA_SASL_BROKERS=$KAFKA_HOST:$KAFKA_SASL_PORT
export KAFKA_SSL_BROKERS=$KAFKA_HOST:$KAFKA_SSL_PORT
export KAFKA_CA_FILE=$KAFKA_CA_FILE
export KAFKA_SASL_USER=$KAFKA_SASL_USER
export KAFKA_SASL_PASSWORD=$KAFKA_SASL_PASSWORD
# the modern-ClickHouse checks (chdb)
export CDRGUARD_CHDB_PYTHON=$CHDB_VENV/bin/python
EOF
}

usage() { sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

# Serialise up/down/purge: concurrent callers (parallel CI steps, two
# terminals) wait for each other instead of racing to start two servers.
# The servers are launched with fd 9 closed so they do not inherit the lock.
lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$SCRATCH.lock"
  flock -w "$READY_TIMEOUT" 9 || die "another services.sh is still running (lock $SCRATCH.lock)"
}

main() {
  local cmd=${1:-}; shift || true
  case $cmd in up|down|purge) lock ;; esac
  case $cmd in
    up)      cmd_up ;;
    down)    cmd_down "$@" ;;
    purge)   cmd_down --purge ;;
    status)  cmd_status || exit 1 ;;   # `||` keeps the ERR trap quiet
    logs)    cmd_logs "$@" ;;
    env)     cmd_env ;;
    -h|--help|help) usage 0 ;;
    *)       usage ;;
  esac
}

main "$@"

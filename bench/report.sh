#!/usr/bin/env bash
# How fast `tailor report` reads the events stream: a nats-server process
# (JetStream on disk) holding EVENTS synthetic events (bench/fill-events),
# read by `tailor report` ROUNDS times; median events/s and CPU per event.
# nats-server runs on core SERVER_CPU, tailor report on READER_CPU (a
# separate core each on 2 cores, as when NATS runs on another host).
# Loopback only; everything it starts it stops, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-1000000}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-1}
READER_CPU=${READER_CPU:-0}
PORT=${PORT:-14322}

TMP=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT
log() { printf '[report bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

log "building tailor, nats-server and fill-events"
go build -o "$TMP/tailor" ./cmd/tailor
go build -o "$TMP/nats-server" github.com/nats-io/nats-server/v2
go build -o "$TMP/fill-events" ./bench/fill-events

taskset -c "$SERVER_CPU" "$TMP/nats-server" -js -sd "$TMP/js" -a 127.0.0.1 -p "$PORT" >"$TMP/nats.log" 2>&1 &
pids+=($!)
server_pid=$!
for _ in $(seq 100); do
	(echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done

log "publishing $EVENTS events"
"$TMP/fill-events" -url "nats://127.0.0.1:$PORT" -n "$EVENTS"

mkdir -p "$TMP/rules"
cat >"$TMP/rules/bench.yaml" <<'YAML'
stages: [awareness, interest, intent, purchase]
journey:
  - { path: "/checkout/done", stage: purchase, goal: purchase, value: 100 }
pages:
  - match: ["/"]
    rules:
      - id: hero-copy-test
        select: "#hero h1"
        experiment:
          holdout: 10
          variants:
            a: { weight: 50, text: "Run further" }
            b: { weight: 50, text: "Run faster" }
YAML
cat >"$TMP/tailor.yaml" <<YAML
nats: { url: "nats://127.0.0.1:$PORT" }
rules: { dir: rules }
YAML

# cpu_ticks PID: the process's user+system CPU so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
rates=() cpus=() scpus=()
for r in $(seq "$ROUNDS"); do
	s0=$(cpu_ticks "$server_pid")
	/usr/bin/time -f '%U %S' -o "$TMP/time" taskset -c "$READER_CPU" "$TMP/tailor" report --config "$TMP/tailor.yaml" --since 24h >"$TMP/out" 2>"$TMP/err"
	read -r n rate <<<"$(sed -n 's/^read \([0-9,]*\) events in .* (\([0-9,]*\)\/s)$/\1 \2/p' "$TMP/err" | tr -d ,)"
	[ "${n:-0}" = "$EVENTS" ] || { cat "$TMP/err" >&2; log "round $r read ${n:-0} events, want $EVENTS"; exit 1; }
	s1=$(cpu_ticks "$server_pid")
	read -r user sys <"$TMP/time"
	cpu=$(awk -v u="$user" -v s="$sys" -v n="$n" 'BEGIN { printf "%.2f", (u + s) * 1e6 / n }')
	scpu=$(awk -v t="$((s1 - s0))" -v hz="$hz" -v n="$n" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
	log "round $r: $rate events/s; CPU per event: tailor $cpu µs, nats-server $scpu µs"
	rates+=("$rate") cpus+=("$cpu") scpus+=("$scpu")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "tailor report over $EVENTS events: median $(median "${rates[@]}") events/s; CPU per event: tailor $(median "${cpus[@]}") µs, nats-server $(median "${scpus[@]}") µs (tailor on core $READER_CPU, nats-server on core $SERVER_CPU)"
head -30 "$TMP/out"

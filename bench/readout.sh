#!/usr/bin/env bash
# Incremental readouts over a large stream (issue 18): a nats-server
# process (JetStream on disk, loopback) holding EVENTS synthetic events
# (bench/fill-events -rich: VISITORS visitors over a week, two
# experiments, purchases, sign-ups, logins). Then:
#   1. `tailor report` with no edge folding: it takes the readout lease,
#      folds the whole stream into the aggregate, stores the snapshot and
#      prints: the catch-up rate (events/s).
#   2. `tailor report` again, ROUNDS times: answered from the aggregate
#      (one KV read); its wall time.
#   3. `tailor report --since 30d`: a full read of the same stream; its
#      time, and whether its JSON equals the aggregate's (since aside),
#      plain and --by segment.
# Not part of CI. Bounded: every step has a timeout; everything it starts
# it stops, by PID; its data (some 4 GB for 10M events) is removed.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-10000000}
VISITORS=${VISITORS:-1000000}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-14323}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}

TMP=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT
log() { printf '[readout bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need=$((EVENTS / 1000000 * 600 + 500)) # MB: ~420 B an event on disk, and room
avail=$(df -m --output=avail "$TMP" | tail -1)
[ "$avail" -gt "$need" ] || { log "only $avail MB free in $TMP, want $need"; exit 1; }

log "building tailor, nats-server and fill-events"
go build -o "$TMP/tailor" ./cmd/tailor
go build -o "$TMP/nats-server" github.com/nats-io/nats-server/v2
go build -o "$TMP/fill-events" ./bench/fill-events

"$TMP/nats-server" -js -sd "$TMP/js" -a 127.0.0.1 -p "$PORT" >"$TMP/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	(echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.1
done

log "publishing $EVENTS events of $VISITORS visitors"
timeout "$STEP_TIMEOUT" "$TMP/fill-events" -url "nats://127.0.0.1:$PORT" -n "$EVENTS" -visitors "$VISITORS" -rich -span 168h

mkdir -p "$TMP/rules"
cat >"$TMP/rules/bench.yaml" <<'YAML'
stages: [awareness, interest, intent, purchase]
journey:
  - { path: "/checkout/done", stage: purchase, goal: purchase, value: 100 }
  - { path: "/signup/done", goal: signup }
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
      - id: promo-banner
        select: "#promo"
        experiment:
          variants:
            on: { weight: 50, text: "Free shipping" }
            off: { weight: 50, text: "" }
YAML
cat >"$TMP/tailor.yaml" <<YAML
nats: { url: "nats://127.0.0.1:$PORT" }
rules: { dir: rules }
YAML

# wall OUT ERR COMMAND...: runs it, its output to OUT and ERR; prints its
# wall time in seconds.
wall() {
	local out=$1 err=$2 t0 t1
	shift 2
	t0=$(date +%s.%N)
	"$@" >"$out" 2>"$err"
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

log "1. tailor report with no edge folding: it folds the stream itself"
catchup=$(wall "$TMP/fold.json" "$TMP/fold.err" timeout "$STEP_TIMEOUT" "$TMP/tailor" report --config "$TMP/tailor.yaml" --json)
grep -v '^time=' "$TMP/fold.err" | tail -3 >&2
grep -q "folded here" "$TMP/fold.err" || { log "tailor report did not fold"; exit 1; }
rate=$(sed -n 's/.*caught up in [^,]*, \([0-9,]*\)\/s.*/\1/p' "$TMP/fold.err" | tr -d ,)
log "caught up $EVENTS events in ${catchup}s in all (tailor's own count: ${rate} events/s)"

log "2. tailor report from the aggregate, $ROUNDS times"
times=()
for r in $(seq "$ROUNDS"); do
	t=$(wall "$TMP/agg.json" "$TMP/agg.err" timeout 60 "$TMP/tailor" report --config "$TMP/tailor.yaml" --json)
	grep -q "up to date" "$TMP/agg.err" || { cat "$TMP/agg.err" >&2; log "round $r: not from an up-to-date aggregate"; exit 1; }
	times+=("$t")
	log "round $r: ${t}s ($(grep -o 'answered in [^ ]*' "$TMP/agg.err"))"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
timeout 60 "$TMP/tailor" report --config "$TMP/tailor.yaml" --json --by segment >"$TMP/agg-seg.json" 2>/dev/null

log "3. a full read of the same stream (--since 30d)"
full=$(wall "$TMP/full.json" "$TMP/full.err" timeout "$STEP_TIMEOUT" "$TMP/tailor" report --config "$TMP/tailor.yaml" --json --since 30d)
grep '^read ' "$TMP/full.err" >&2
timeout "$STEP_TIMEOUT" "$TMP/tailor" report --config "$TMP/tailor.yaml" --json --since 30d --by segment >"$TMP/full-seg.json" 2>/dev/null

same() { if [ "$(jq -S 'del(.since)' "$1")" = "$(jq -S 'del(.since)' "$2")" ]; then echo equal; else echo DIFFERENT; fi; }
eq=$(same "$TMP/agg.json" "$TMP/full.json")
eqseg=$(same "$TMP/agg-seg.json" "$TMP/full-seg.json")
events=$(jq .events "$TMP/agg.json")
echo "readout over $events events ($VISITORS visitors): catch-up ${catchup}s (${rate} events/s folded); tailor report from the aggregate: median $(median "${times[@]}")s of $ROUNDS; full read ${full}s; aggregate vs full read: $eq (--by segment: $eqseg)"
[ "$eq" = equal ] && [ "$eqseg" = equal ] || { diff <(jq -S 'del(.since)' "$TMP/agg.json") <(jq -S 'del(.since)' "$TMP/full.json") | head -40 >&2; exit 1; }

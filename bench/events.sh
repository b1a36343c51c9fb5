#!/usr/bin/env bash
# Whole-system benchmark of journey tracking and events (issue 6), or,
# with the argument "interests", of browsing interests and personas
# (issue 8; bench/interests.sh runs that). Events: the
# ~100 KB page of personalize.sh through two tailors, each with its own
# embedded NATS server, every request from one returning visitor:
#
#   tailor-off  rules with an experiment; no journey entries, no events
#               (nats.events_stream: "")
#   tailor-on   the same rules plus journey entries (none of which match
#               the page, as for most page views), and every event
#               published to the TAILOR_EVENTS stream
#
# page.html has rules: 4 rewrites and an experiment, so each view reports
# a pageview and an exposure. plain.html has none: it streams through,
# and each view reports a pageview. on/off is what journey + events cost
# (issue 6's figure); the events the publisher wrote per second of the
# run are printed beside it. Same layout and machinery as passthrough.sh
# (bench/lib.sh). See bench/README.md.
#
# The visitor sends a signed tailor_id and a signed tailor_state cookie,
# as a browser does. Its state says it was last seen 4 minutes from now
# (tailor takes up to 5 minutes of clock skew between edges), so it stays
# current for the whole run (a browser gets a fresh state cookie at most
# once a minute, which a fixed wrk header cannot follow), and that
# this visit has reported the experiment already (either variant): each
# view of page.html then reports its pageview, as a browsing visitor's
# page views after the first do.
#
# The interests scenario: both tailors have the journey and events on,
# and the visitor's state holds three interest scores;
#
#   tailor-off  the rules, journey and events of tailor-on above
#   tailor-on   the same plus interests: (page.html adds 5 running points
#               on every view, as a product page does) and personas: (3)
#
# On tailor-on each view of page.html decays the scores, adds its points,
# matches the persona and sends the changed state back (a Set-Cookie per
# view, as a browsing visitor gets); plain.html scores nothing: its views
# decay the scores and match the persona for the events. Goal 0.95.
#
#   bash bench/events.sh [interests]
#
# Environment (all optional): as passthrough.sh
#   ROUNDS=3  DURATION=8s  CONNECTIONS=64  WARMUP=2s  WRK_CPU=0  SERVER_CPU=1
#   TAILOR_BIN=...  IDLE_WAIT=60  OUT=FILE  KEEP_TMP=1
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGETS=(tailor-off tailor-on)
FILES=(page.html plain.html)
SCENARIO=${1:-events}
case $SCENARIO in
events) GOAL=0.90 ;;    # issue 6: req/s with journey + events >= 90% of without
interests) GOAL=0.95 ;; # issue 8: req/s with interests + personas >= 95% of without
*) echo "usage: bash bench/events.sh [interests]" >&2 && exit 2 ;;
esac

check_knobs
need_tools openssl perl
setup_pinning
log_plan "plus the build (and up to ${IDLE_WAIT}s if the machine is busy)"
wait_idle
make_tmp

take_port ORIGIN_PORT
for t in OFF ON; do
	take_port "${t}_PORT"
	take_port "${t}_ADMIN"
	take_port "${t}_NATS"
done

declare -A URL_BASE=(
	[origin]="http://127.0.0.1:$ORIGIN_PORT"
	[tailor-off]="http://127.0.0.1:$OFF_PORT"
	[tailor-on]="http://127.0.0.1:$ON_PORT"
)
declare -A ADMIN_OF=([tailor-off]=$OFF_ADMIN [tailor-on]=$ON_ADMIN)

# ---------------------------------------------------------------- content
WWW=$TMP/www
mkdir -p "$WWW"
gen_html >"$WWW/page.html"
cp "$WWW/page.html" "$WWW/plain.html"
chmod 755 "$WWW"
chmod 644 "$WWW"/*
SIZE=$(stat -c %s "$WWW/page.html")
log "content: page.html and plain.html, $SIZE bytes each (text/html)"

# ---------------------------------------------------------------- visitor
# Signed tailor_id and tailor_state cookies (bench/lib.sh): in interest,
# and exposed to either variant of the experiment.
new_visitor
exposed() { printf 'bench-experiment\0%s' "$1" | openssl dgst -sha256 -binary | head -c 6 | b64url | head -c 6; }
INTERESTS=""
[[ $SCENARIO == interests ]] && INTERESTS="running:12|trail:3|camping:1"
COOKIE="$ID_COOKIE; $(state_cookie interest "$(exposed a).$(exposed b)" "$INTERESTS")"
WRK_ARGS=(-H "Cookie: $COOKIE")

# ---------------------------------------------------------------- configs
nginx_conf origin "
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WWW;
    }"

rules_yaml() { # rules_yaml ON(0|1): journey (events), or interests + personas
	cat <<'EOF'
stages: [awareness, interest, intent, purchase, retention]
segments:
  returning: { visits: ">= 2" }
EOF
	if (($1)) || [[ $SCENARIO == interests ]]; then
		cat <<'EOF'
journey:
  - { path: "/products/**",   stage: interest }
  - { path: "/cart",          stage: intent }
  - { path: "/checkout/done", stage: purchase, goal: purchase, value: 100 }
  - { path: "/newsletter/ok", goal: subscribe, value: 20 }
EOF
	fi
	if (($1)) && [[ $SCENARIO == interests ]]; then
		cat <<'EOF'
interests:
  half_life: 14d
  rules:
    - { path: "/page.html",            add: { running: 5 } }
    - { path: "/products/camping/**",  add: { camping: 5 } }
    - { path: "/blog/trail/**",        add: { trail: 3, running: 1 } }
personas:
  min_score: 0.6
  runner: { running: 1.0, trail: 0.3 }
  hiker:  { trail: 1.0, camping: 0.6 }
  camper: { camping: 1.0 }
EOF
	fi
	cat <<'EOF'
pages:
  - match: ["/page.html"]
    rules:
      - id: bench-experiment
        select: "article h1"
        experiment:
          holdout: 0
          variants:
            a: { weight: 50, text: "Edge personalization, variant a" }
            b: { weight: 50, text: "Edge personalization, variant b" }
      - id: bench-inner
        select: "#account-slot"
        inner: '<a href="/account" class="btn btn--primary">Your account</a>'
      - id: bench-attr
        select: "#content"
        attr: { data-stage: "{{ .Stage }}" }
      - id: bench-add-class
        when: { segment: returning }
        select: ".byline"
        add_class: byline--returning
      - id: bench-cta
        select: "aside.sidebar"
        map:
          by: stage
          interest: { replace: '<aside class="sidebar"><a href="/guide">Read the buyer guide</a></aside>' }
EOF
}
mkdir -p "$TMP/rules-off" "$TMP/rules-on"
rules_yaml 0 >"$TMP/rules-off/site.yaml"
rules_yaml 1 >"$TMP/rules-on/site.yaml"
tailor_yaml() { # tailor_yaml PORT ADMIN RULES-DIR NATS-PORT STREAM
	cat <<EOC
listen: "127.0.0.1:$1"
origin: "http://127.0.0.1:$ORIGIN_PORT"
admin: { listen: "127.0.0.1:$2" }
identity: { cookie: { keys: ["$COOKIE_KEY"] } }
rules: { dir: "$3", watch: false }
nats: { embedded: true, url: "nats://127.0.0.1:$4", data_dir: "$TMP/nats-$4", events_stream: "$5" }
EOC
}
OFF_STREAM=""
[[ $SCENARIO == interests ]] && OFF_STREAM=TAILOR_EVENTS
tailor_yaml "$OFF_PORT" "$OFF_ADMIN" "$TMP/rules-off" "$OFF_NATS" "$OFF_STREAM" >"$TMP/off.yaml"
tailor_yaml "$ON_PORT" "$ON_ADMIN" "$TMP/rules-on" "$ON_NATS" TAILOR_EVENTS >"$TMP/on.yaml"

# ---------------------------------------------------------------- build, start
build_tailor
for c in off on; do
	"$TAILOR_BIN" check --config "$TMP/$c.yaml" >/dev/null || die "tailor check rejected $TMP/$c.yaml"
done
start_nginx origin
wait_http origin "${URL_BASE[origin]}/page.html" "${PID_OF[origin]}"
start_tailor tailor-off "$TMP/off.yaml" "$OFF_ADMIN"
start_tailor tailor-on "$TMP/on.yaml" "$ON_ADMIN"

# ---------------------------------------------------------------- checks
# Both targets answer 200, rewrite page.html the same way (the variant is
# the visitor's, the stage interest from their state), pass plain.html
# through byte for byte, and set no cookie: the visitor's verify and are
# current.
verify() {
	local t f got
	for t in "${TARGETS[@]}"; do
		for f in "${FILES[@]}"; do
			got=$(curl -sS -A "$BENCH_UA" -D "$TMP/check.head" -o "$TMP/check.$t.$f" -w '%{http_code}' --max-time 10 \
				-H "Cookie: $COOKIE" "${URL_BASE[$t]}/$f") || die "$t /$f: curl failed"
			[[ $got == 200 ]] || die "$t /$f: status $got, want 200"
			if [[ $SCENARIO == interests && $t == tailor-on && $f == page.html ]]; then
				# The view added 5 running points: the state comes back.
				grep -qi '^set-cookie: tailor_state=s1\..*~running:17|' "$TMP/check.head" || die "$t /$f: no new state with 17 running points: $(grep -i '^set-cookie:' "$TMP/check.head")"
			else
				! grep -qi '^set-cookie:' "$TMP/check.head" || die "$t /$f: Set-Cookie sent: $(grep -i '^set-cookie:' "$TMP/check.head")"
			fi
		done
		cmp -s "$TMP/check.$t.plain.html" "$WWW/plain.html" || die "$t /plain.html: not the origin's bytes"
		for want in 'Edge personalization, variant ' 'data-stage="interest"' 'byline--returning' 'Read the buyer guide' 'Your account'; do
			grep -qF "$want" "$TMP/check.$t.page.html" || die "$t /page.html lacks '$want'"
		done
	done
	cmp -s "$TMP/check.tailor-off.page.html" "$TMP/check.tailor-on.page.html" || die "the two targets rewrote page.html differently"
}
verify
log "checked: both targets answer 200, page.html personalized alike, plain.html untouched, no Set-Cookie but the scoring view's"

metric() { # metric TARGET NAME-WITH-LABELS: the value, 0 when absent
	curl -sS "http://127.0.0.1:${ADMIN_OF[$1]}/metrics" | awk -v m="$2" '$1 == m {v = $2} END {print v + 0}'
}
# Events must flow before measuring: the stream is created in the background.
for _ in $(seq 1 50); do
	(($(metric tailor-on tailor_events_published_total) > 0)) && break
	sleep 0.2
done
(($(metric tailor-on tailor_events_published_total) > 0)) || die "tailor-on published no events (logs in $TMP)"

# ---------------------------------------------------------------- measure
init_results
pub0=$(metric tailor-on tailor_events_published_total)
t0=$(date +%s.%N)
measure_all
t1=$(date +%s.%N)
for t in origin tailor-off tailor-on; do
	kill -0 "${PID_OF[$t]}" 2>/dev/null || die "$t died during the run (logs in $TMP)"
done
verify
# Let the queue drain, then count.
for _ in $(seq 1 50); do
	(($(metric tailor-on tailor_events_queue_depth) == 0)) && break
	sleep 0.2
done
pub1=$(metric tailor-on tailor_events_published_total)
queued=$(curl -sS "http://127.0.0.1:$ON_ADMIN/metrics" | awk '/^tailor_events_total\{result="queued"/ {s += $2} END {print s + 0}')
dropped=$(metric tailor-on tailor_events_dropped_total)
depth=$(metric tailor-on tailor_events_queue_depth)
off_events=$(curl -sS "http://127.0.0.1:$OFF_ADMIN/metrics" | awk '/^tailor_events_total\{result="queued"/ {s += $2} END {print s + 0}')
[[ $SCENARIO == interests ]] || ((off_events == 0)) || die "tailor-off reported $off_events events"
[[ -n $OUT ]] && cp "$RESULTS" "$OUT" && log "raw results saved to $OUT"

# ---------------------------------------------------------------- report
echo
title="journey + events"
[[ $SCENARIO == interests ]] && title="interests + personas"
echo "tailor $title benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION --latency, one returning visitor's cookies; $ROUNDS interleaved round(s), medians;" \
	"$( ((PIN)) && echo "wrk on core $WRK_CPU, origin + proxy (with its embedded NATS) on core $SERVER_CPU" || echo "no CPU pinning")"
echo "origin: nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), 1 worker; tailor $("$TAILOR_BIN" version 2>/dev/null | awk '{print $2}') GOMAXPROCS=1"
echo
report_table
echo
for f in "${FILES[@]}"; do
	awk -v f="$f" -v on="${MED[$f/tailor-on]}" -v off="${MED[$f/tailor-off]}" -v g="$GOAL" \
		-v onc="${PCPU[$f/tailor-on]}" -v offc="${PCPU[$f/tailor-off]}" 'BEGIN{
		printf "%-11s on/off req/s = %.2f (goal >= %.2f)   CPU/req %.2f\n", f, on/off, g, onc/offc }'
done
awk -v p="$((pub1 - pub0))" -v t0="$t0" -v t1="$t1" -v q="$queued" -v d="$dropped" -v depth="$depth" 'BEGIN{
	printf "events: %d published during the runs (%.0f/s averaged over the whole measurement, off-target runs included);\n", p, p/(t1-t0)
	printf "        %d queued in all, %d dropped, %d still queued at the end\n", q, d, depth }'
echo
report_legend "proxy us/r: CPU time (user+sys) of the tailor process per request, its embedded NATS server (and the JetStream writes) included."

#!/usr/bin/env bash
# Whole-system personalization benchmark: tailor rewriting 5 blocks of a
# ~100 KB page vs the same tailor passing the page through, for a page the
# compiled-page cache serves (page.html) and for one that differs on every
# request (nonce.html), with nginx proxy_pass for reference. Same layout
# and machinery as passthrough.sh (bench/lib.sh). See bench/README.md.
#
#   bash bench/personalize.sh
#
# Environment (all optional): as passthrough.sh
#   ROUNDS=3  DURATION=8s  CONNECTIONS=64  WARMUP=2s  WRK_CPU=0  SERVER_CPU=1
#   TAILOR_BIN=...  IDLE_WAIT=60  OUT=FILE  KEEP_TMP=1
#   NGINX_PROXY_EXTRA=... extra directives for the proxy nginx's location
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NGINX_PROXY_EXTRA=${NGINX_PROXY_EXTRA:-}

TARGETS=(nginx tailor-pass tailor-rules)
FILES=(page.html nonce.html)
GOAL=0.60 # issue 4: personalized req/s >= 60% of pass-through req/s

check_knobs
need_tools perl
setup_pinning
log_plan "plus the build (and up to ${IDLE_WAIT}s if the machine is busy)"
wait_idle
make_tmp

# ---------------------------------------------------------------- ports
take_port ORIGIN_PORT
take_port NGINX_PORT
take_port PASS_PORT
take_port PASS_ADMIN
take_port RULES_PORT
take_port RULES_ADMIN

declare -A URL_BASE=(
	[origin]="http://127.0.0.1:$ORIGIN_PORT"
	[nginx]="http://127.0.0.1:$NGINX_PORT"
	[tailor-pass]="http://127.0.0.1:$PASS_PORT"
	[tailor-rules]="http://127.0.0.1:$RULES_PORT"
)
declare -A ADMIN_OF=([tailor-pass]=$PASS_ADMIN [tailor-rules]=$RULES_ADMIN)

# ---------------------------------------------------------------- content
# page.html: the generated page; the same bytes on every request.
# nonce.html: the same page with a CSRF-style <meta> whose placeholder the
# origin replaces with its $request_id (32 hex digits, as long as the
# placeholder): a new page on every request, of constant size.
NONCE_PH=tailor-bench-nonce-placeholder00
((${#NONCE_PH} == 32)) || die "the nonce placeholder must be 32 characters"
NONCE_META_RE='<meta name="csrf-token" content="[0-9a-f]{32}">'
WWW=$TMP/www
mkdir -p "$WWW"
gen_html >"$WWW/page.html"
awk -v ph="$NONCE_PH" '{ print } /<meta charset=/ && !done { printf "  <meta name=\"csrf-token\" content=\"%s\">\n", ph; done = 1 }' \
	"$WWW/page.html" >"$WWW/nonce.html"
chmod 755 "$WWW"
chmod 644 "$WWW"/*

# The five rewrites, as rules (tailor-rules) and as the byte edits they
# must make to the origin's page (the expected bodies below). None has a
# condition: each fires on every request. The visitor is anonymous, so
# {{ .Stage }} renders the first declared stage, "awareness".
RULE_TEXT='Edge personalization for the {{ .Stage }} stage'
RULE_INNER='<a href="/account" class="btn btn--primary">Your account</a>'
RULE_CLASS=byline--tailored
RULE_REPLACE='<aside class="sidebar sidebar--tailored"><h3>Picked for you</h3><ul><li><a href="/guide">The buyer guide</a></li><li><a href="/blog/post-1">Edge caching in practice</a></li></ul></aside>'

rules_yaml() { # rules_yaml MATCH-GLOB
	cat <<EOF
# 5 rewrites of the generated article page, no conditions: all always fire.
stages: [awareness, interest, intent]
pages:
  - match: ["$1"]
    rules:
      - id: bench-text
        select: "article h1"
        text: '$RULE_TEXT'
      - id: bench-inner
        select: "#account-slot"
        inner: '$RULE_INNER'
      - id: bench-attr
        select: "#content"
        attr: { data-stage: "{{ .Stage }}" }
      - id: bench-add-class
        select: ".byline"
        add_class: $RULE_CLASS
      - id: bench-replace
        select: "aside.sidebar"
        replace: '$RULE_REPLACE'
EOF
}
# tailor-rules: the rules apply to both files. tailor-pass: the same rules
# on a path nothing requests, so every response is pure pass-through.
mkdir -p "$TMP/rules-on" "$TMP/rules-off"
rules_yaml "/*.html" >"$TMP/rules-on/bench.yaml"
rules_yaml "/elsewhere/**" >"$TMP/rules-off/bench.yaml"

# apply_rewrites IN OUT: the page tailor-rules must serve for origin page
# IN. Each pattern must match exactly once in IN; the rest is untouched.
apply_rewrites() {
	perl -0777 -e '
		my $s = <STDIN>;
		while (@ARGV) {
			my ($re, $to) = splice(@ARGV, 0, 2);
			my $n = () = $s =~ /$re/gs;
			$n == 1 or die "apply_rewrites: /$re/ matches $n times\n";
			$s =~ s/$re/$to/s;
		}
		print $s' \
		'<h1 itemprop="headline">[^<]*</h1>' "<h1 itemprop=\"headline\">${RULE_TEXT//\{\{ .Stage \}\}/awareness}</h1>" \
		'<div class="account" id="account-slot">.*?</div>' "<div class=\"account\" id=\"account-slot\">$RULE_INNER</div>" \
		'<main id="content">' '<main id="content" data-stage="awareness">' \
		'<p class="byline">' "<p class=\"byline $RULE_CLASS\">" \
		'<aside class="sidebar">.*?</aside>' "$RULE_REPLACE" \
		<"$1" >"$2" || die "cannot build the expected page from $1"
}
# unnonce IN OUT: IN with the origin's nonce put back to the placeholder;
# the nonce must be there exactly once.
unnonce() {
	perl -0777 -e '
		my ($re, $to) = @ARGV; my $s = <STDIN>;
		my $n = ($s =~ s/$re/$to/g);
		$n == 1 or die "unnonce: the nonce <meta> appears ".($n+0)." times\n";
		print $s' "$NONCE_META_RE" "<meta name=\"csrf-token\" content=\"$NONCE_PH\">" <"$1" >"$2"
}

EXP=$TMP/expected
mkdir -p "$EXP"
for f in "${FILES[@]}"; do
	cp "$WWW/$f" "$EXP/$f.pass"
	apply_rewrites "$WWW/$f" "$EXP/$f.rules"
done
declare -A SIZE
for f in "${FILES[@]}"; do SIZE[$f]=$(stat -c %s "$WWW/$f"); done
log "content: page.html ${SIZE[page.html]} bytes, nonce.html ${SIZE[nonce.html]} bytes (text/html);" \
	"personalized: $(stat -c %s "$EXP/page.html.rules") / $(stat -c %s "$EXP/nonce.html.rules") bytes"

# ---------------------------------------------------------------- configs
# The origin serves page.html from the file (sendfile, Content-Length) and
# nonce.html through sub_filter, which drops Content-Length and ETag: it
# is always sent chunked, to every target. sub_filter_types defaults to
# text/html (naming it again makes nginx warn about a duplicate). Its CPU
# cost lands on the origin, the same for every target.
nginx_conf origin "
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$ORIGIN_PORT;
        root $WWW;
        location = /nonce.html {
            sub_filter '$NONCE_PH' '\$request_id';
            sub_filter_once on;
        }
    }"

# The proxy nginx (lib.sh): keep-alive proxy_pass, default buffers.
proxy_nginx_conf

tailor_conf() { # tailor_conf NAME PORT ADMIN RULES-DIR
	cat >"$TMP/$1.yaml" <<EOF
listen: "127.0.0.1:$2"
origin: "http://127.0.0.1:$ORIGIN_PORT"
admin: { listen: "127.0.0.1:$3" }
rules: { dir: "$4", watch: false }
EOF
}
tailor_conf tailor-pass "$PASS_PORT" "$PASS_ADMIN" "$TMP/rules-off"
tailor_conf tailor-rules "$RULES_PORT" "$RULES_ADMIN" "$TMP/rules-on"

# ---------------------------------------------------------------- build
build_tailor
for t in tailor-pass tailor-rules; do
	"$TAILOR_BIN" check --config "$TMP/$t.yaml" >"$TMP/$t.check" 2>&1 ||
		{ cat "$TMP/$t.check" >&2; die "tailor check rejected $TMP/$t.yaml"; }
done

# ---------------------------------------------------------------- start
start_nginx origin
wait_http origin "${URL_BASE[origin]}/page.html" "${PID_OF[origin]}"
start_nginx nginx
wait_http nginx "${URL_BASE[nginx]}/page.html" "${PID_OF[nginx]}"
start_tailor tailor-pass "$TMP/tailor-pass.yaml" "$PASS_ADMIN"
start_tailor tailor-rules "$TMP/tailor-rules.yaml" "$RULES_ADMIN"
log "origin nginx :$ORIGIN_PORT (pid ${PID_OF[origin]}), nginx proxy :$NGINX_PORT (pid ${PID_OF[nginx]})," \
	"tailor-pass :$PASS_PORT admin :$PASS_ADMIN (pid ${PID_OF[tailor-pass]})," \
	"tailor-rules :$RULES_PORT admin :$RULES_ADMIN (pid ${PID_OF[tailor-rules]}), GOMAXPROCS=1;" \
	"$( ((PIN)) && echo "wrk on core $WRK_CPU, servers on core $SERVER_CPU" || echo "unpinned")"

# ---------------------------------------------------------------- checks
# fetch NAME FILE OUT: GET into OUT (headers in OUT.h); must be a 200.
fetch() {
	local got
	got=$(curl -sS -A "$BENCH_UA" -D "$3.h" -o "$3" -w '%{http_code}' --max-time 10 "${URL_BASE[$1]}/$2") ||
		die "$1 /$2: curl failed"
	[[ $got == 200 ]] || die "$1 /$2: status $got, want 200"
}
# same FILE EXPECTED WHAT: FILE must equal EXPECTED byte for byte.
same() {
	cmp -s "$1" "$2" && return 0
	log "$3: body differs from the expected bytes ($(stat -c %s "$1") vs $(stat -c %s "$2") bytes); first differences:"
	diff "$2" "$1" | head -20 >&2 || true
	die "$3: wrong body"
}
# framing HEADERS-FILE: how the body was delimited.
framing() {
	if grep -qi '^transfer-encoding: *chunked' "$1"; then echo chunked
	elif grep -qi '^content-length:' "$1"; then echo "length"
	else echo "close"; fi
}

verify() { # verify [quiet]
	local t f want a=$TMP/check.a b=$TMP/check.b frames=""
	# The origin itself: page.html as a file; nonce.html new on every request.
	fetch origin page.html "$a"
	same "$a" "$WWW/page.html" "origin /page.html"
	frames+="origin page=$(framing "$a.h")"
	fetch origin nonce.html "$a"
	fetch origin nonce.html "$b"
	cmp -s "$a" "$b" && die "origin /nonce.html: two fetches returned the same bytes (sub_filter not applied?)"
	unnonce "$a" "$a.n" || die "origin /nonce.html: no nonce"
	same "$a.n" "$WWW/nonce.html" "origin /nonce.html (nonce put back)"
	frames+=" nonce=$(framing "$a.h")"
	for t in "${TARGETS[@]}"; do
		want=pass
		[[ $t == tailor-rules ]] && want=rules
		fetch "$t" page.html "$a"
		same "$a" "$EXP/page.html.$want" "$t /page.html"
		frames+="; $t page=$(framing "$a.h")"
		fetch "$t" nonce.html "$a"
		fetch "$t" nonce.html "$b"
		cmp -s "$a" "$b" && die "$t /nonce.html: two consecutive fetches returned the same bytes"
		unnonce "$a" "$a.n" || die "$t /nonce.html: the origin's nonce is missing"
		same "$a.n" "$EXP/nonce.html.$want" "$t /nonce.html (nonce put back)"
		frames+=" nonce=$(framing "$a.h")"
	done
	[[ ${1:-} == quiet ]] && return 0
	log "checked: all targets answer 200; nginx and tailor-pass serve the origin's exact bytes," \
		"tailor-rules the origin's bytes with exactly the 5 rewrites (text, inner, attr, add_class," \
		"replace) and nothing else; nonce.html differs on every fetch through every target"
	log "framing: $frames"
}
verify

# ---------------------------------------------------------------- measure
# Around every tailor run, the admin /metrics counters (lib.sh's
# metrics_hook, into $METRICS).
metrics_setup

init_results
measure_all

# The processes must have survived and still serve the right bytes.
for t in origin nginx tailor-pass tailor-rules; do
	kill -0 "${PID_OF[$t]}" 2>/dev/null || die "$t died during the run (logs in $TMP)"
done
verify quiet
log "checked again after the runs: same answers"

[[ -n $OUT ]] && cp "$RESULTS" "$OUT" && log "raw results saved to $OUT"

# ---------------------------------------------------------------- report
echo
echo "tailor personalization benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
echo "wrk -t1 -c$CONNECTIONS -d$DURATION --latency; $ROUNDS interleaved round(s), medians shown;" \
	"$( ((PIN)) && echo "wrk on core $WRK_CPU, origin + proxy on core $SERVER_CPU" || echo "no CPU pinning")"
echo "origin: nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), 1 worker (nonce.html via sub_filter, chunked); proxy nginx: 1 worker," \
	"upstream keepalive 64${NGINX_PROXY_EXTRA:+, ${NGINX_PROXY_EXTRA%;}};" \
	"tailor $("$TAILOR_BIN" version 2>/dev/null | awk '{print $2}') GOMAXPROCS=1"
echo "tailor-pass: rules on another path (pure pass-through); tailor-rules: 5 rewrites (text, inner, attr, add_class, replace)"
echo
report_table
echo
# Ratios of the medians, and the median of the per-round ratios (the two
# tailors run back to back in each round, so a round's ratio is the
# better paired comparison when the machine drifts). With the server core
# saturated, req/s is about 1 / (proxy + origin CPU per request): the
# ratio of those sums predicts the req/s ratio from the steadiest columns,
# which other work on the machine barely moves.
for f in "${FILES[@]}"; do
	perround=$(awk -F'\t' -v f="$f" 'NR > 1 && $2 == f && $3 == "tailor-pass" { p[$1] = $4 }
		NR > 1 && $2 == f && $3 == "tailor-rules" { r[$1] = $4 }
		END { for (k in r) if (p[k] > 0) printf "%.2f\n", r[k] / p[k] }' "$RESULTS" | sort -g)
	awk -v f="$f" -v r="${MED[$f/tailor-rules]}" -v p="${MED[$f/tailor-pass]}" -v n="${MED[$f/nginx]}" \
		-v cr="${PCPU[$f/tailor-rules]}" -v cp="${PCPU[$f/tailor-pass]}" -v goal="$GOAL" \
		-v o_r="$(col "$f" tailor-rules 8 | median)" -v o_p="$(col "$f" tailor-pass 8 | median)" \
		-v rounds="$(echo $perround)" -v rmed="$(echo "$perround" | median)" 'BEGIN {
		ratio = r / p
		printf "%-10s tailor-rules/tailor-pass req/s = %.2f (goal >= %.2f: %s; per round: %s, median %.2f)\n",
			f, ratio, goal, (ratio >= goal ? "met" : "NOT MET"), rounds, rmed
		printf "%-10s CPU per request: tailor-pass %.1f us, tailor-rules %.1f us (+%.1f us, x%.2f); tailor-pass/nginx req/s = %.2f\n",
			"", cp, cr, cr - cp, cr / cp, p / n
		printf "%-10s CPU-bound estimate of the ratio, (proxy + origin us/r of tailor-pass) / (same of tailor-rules) = %.2f\n",
			"", (cp + o_p) / (cr + o_r) }'
done
echo
echo "tailor admin /metrics, deltas over each measured run, summed over the rounds:"
mfmt='%-10s %-12s %10s %10s %10s %10s %10s %8s %10s  %s\n'
printf "$mfmt" file target "wrk reqs" "cache hit" "reuse" "cache miss" rewritten "other" evictions check
printf "$mfmt" ---------- ------------ ---------- ---------- ---------- ---------- ---------- -------- ---------- -----
counters_ok=1
for f in "${FILES[@]}"; do
	for t in tailor-pass tailor-rules; do
		read -r reqs hit miss rw other ev runs reuse < <(awk -F'\t' -v f="$f" -v t="$t" '
			NR > 1 && $2 == f && $3 == t { n += $4; h += $5; m += $6; rw += $7; o += $8; e += $9; u += $10; k++ }
			END { print n+0, h+0, m+0, rw+0, o+0, e+0, k+0, u+0 }' "$METRICS")
		# Tailor may have answered requests wrk did not count: those in
		# flight when wrk stopped, at most one per connection and run.
		slack=$((CONNECTIONS * runs))
		served=$((hit + miss + reuse))
		check=ok
		case $t/$f in
		tailor-pass/*) ((served == 0 && rw == 0 && other == 0)) || check="UNEXPECTED: pass-through compiled or rewrote" ;;
		# Each URL keeps its latest template: page.html hits; nonce.html,
		# whose nonce sits in a <meta> attribute no selector reads, reuses
		# its template (adjusted without a parse). Either may miss once per
		# run (a warm-up or the first request after a restart).
		tailor-rules/page.html) ((miss <= runs && reuse == 0 && served >= reqs && served <= reqs + slack && rw == served && other == 0)) ||
			check="UNEXPECTED: want cache hits (at most one miss per run), every one rewritten" ;;
		tailor-rules/nonce.html) ((hit == 0 && miss <= runs && served >= reqs && served <= reqs + slack && rw == served && other == 0)) ||
			check="UNEXPECTED: want every request served by reusing the template, and rewritten" ;;
		esac
		[[ $check == ok ]] || counters_ok=0
		printf "$mfmt" "$f" "$t" "$reqs" "$hit" "$reuse" "$miss" "$rw" "$other" "$ev" "$check"
	done
done
echo
report_legend "proxy us/r: CPU time (user+sys) of the proxy process per request (tailor-pass and tailor-rules are separate processes)."
echo "cache hit/reuse/miss: tailor_page_cache_requests_total; rewritten/other: tailor_rewrites_total by result (other ="
echo "        unchanged, too_large, encoding, error, panic); evictions: tailor_page_cache_evictions_total. page.html must be"
echo "        hits, nonce.html reuses (its nonce changes only a <meta> attribute no selector reads); one miss per run allowed;"
echo "        counts may exceed wrk's by the requests in flight at its end. A nonce no selector can be proven blind to (in"
echo "        page text, say) is compiled on every request instead: measured 0.19-0.21 of pass-through before Reuse existed."
if ((!counters_ok)); then
	echo "WARNING: the cache/rewrite counters are not what this benchmark assumes (see the check column)."
	KEEP_TMP=1
fi

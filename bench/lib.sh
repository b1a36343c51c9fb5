# Shared parts of the whole-system benchmarks (passthrough.sh,
# personalize.sh, profiles.sh, events.sh, dynamic.sh). Sourced, not run:
# see bench/README.md.
#
# The sourcing script sets, before calling the functions below:
#   TARGETS=(...) FILES=(...)   what one round measures
#   URL_BASE[target]            http://127.0.0.1:PORT, per target
#   PID_OF[target]              the process whose CPU is charged to the target
#                               (PID_OF[origin] is the origin nginx; a target
#                               whose PID is the origin's is the origin itself)
# and gets the knobs below (each may be preset in the environment), the
# temporary directory $TMP, cleanup by PID on exit, wrk runs and the table.
# shellcheck shell=bash

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2s}
WRK_CPU=${WRK_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
TAILOR_BIN=${TAILOR_BIN:-}
OUT=${OUT:-}
KEEP_TMP=${KEEP_TMP:-0}
IDLE_WAIT=${IDLE_WAIT:-60}
WRK_ARGS=() # extra wrk arguments (e.g. -H 'Cookie: …'), set by a script
# BENCH_UA is the User-Agent of every request the benches send to a target
# (wrk, and curl's checks): a desktop browser's. wrk sends none and curl
# its own, which tailor takes for bots (experiments.exclude_bots: no
# cookies, no events, every experiment's control): not the visitors a
# bench means to measure.
BENCH_UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# seconds parses a wrk duration (8, 8s, 2m, 1h) into whole seconds.
seconds() {
	local d=$1
	case $d in
	*h) echo $((${d%h} * 3600)) ;;
	*m) echo $((${d%m} * 60)) ;;
	*s) echo "${d%s}" ;;
	*) echo "$d" ;;
	esac
}

# check_knobs validates the knobs and sets DUR_S and WARM_S.
check_knobs() {
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
	[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer"
	DUR_S=$(seconds "$DURATION")
	WARM_S=$(seconds "$WARMUP")
	[[ $DUR_S =~ ^[1-9][0-9]*$ ]] || die "DURATION must look like 8s, 1m"
	[[ $WARM_S =~ ^[0-9]+$ ]] || die "WARMUP must look like 2s (0 disables)"
	[[ $IDLE_WAIT =~ ^[0-9]+$ ]] || die "IDLE_WAIT must be a number of seconds"
}

# ---------------------------------------------------------------- tools
# need_tools [EXTRA...]: wrk and nginx (installed from Debian's packages
# when missing and root), curl, taskset, go (unless TAILOR_BIN) and EXTRA.
# Sets NGINX.
need_tools() {
	local need_install=() t
	command -v wrk >/dev/null 2>&1 || need_install+=(wrk)
	command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need_install+=(nginx)
	if ((${#need_install[@]})); then
		[[ $(id -u) == 0 ]] || die "missing ${need_install[*]}: install them (apt-get install -y wrk nginx) or run as root"
		log "installing ${need_install[*]} from Debian packages"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
	fi
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	for t in curl taskset go "$@"; do
		if [[ $t == go && -n $TAILOR_BIN ]]; then continue; fi
		command -v "$t" >/dev/null 2>&1 || die "$t is required"
	done
}

# setup_pinning sets PIN, WRK_PIN and SRV_PIN.
setup_pinning() {
	NCPU=$(nproc)
	PIN=1
	if ((NCPU < 2)); then
		log "WARNING: only $NCPU core(s): running without CPU pinning, numbers are not comparable to the 2-core layout"
		PIN=0
	elif ((WRK_CPU >= NCPU || SERVER_CPU >= NCPU)); then
		die "WRK_CPU=$WRK_CPU / SERVER_CPU=$SERVER_CPU out of range (nproc=$NCPU)"
	fi
	# Command prefixes, not functions: a function started with & would run in a
	# subshell, and $! would not be the server's PID.
	WRK_PIN=() SRV_PIN=()
	if ((PIN)); then
		WRK_PIN=(taskset -c "$WRK_CPU")
		SRV_PIN=(taskset -c "$SERVER_CPU")
	fi
}

# core_busy: "core busy total steal" jiffies, one line per core. Busy
# excludes idle, iowait and steal (time the hypervisor gave to others).
core_busy() {
	awk '/^cpu[0-9]+ /{t=0; for(i=2;i<=9;i++) t+=$i; print substr($1,4), t-$5-$6-$9, t, $9}' /proc/stat
}
# core_pct CORE BEFORE AFTER COLUMN(busy|steal): percent of CORE's time.
core_pct() {
	paste <(echo "$2") <(echo "$3") | awk -v c="$1" -v k="$4" '$1==c && $7>$3 {
		printf "%.0f", 100 * (k == "busy" ? $6-$2 : $8-$4) / ($7-$3) }'
}

# log_plan EXTRA: the plan and the time estimate. EXTRA is added to the
# estimate after the runs (e.g. "plus the build").
log_plan() {
	local runs warm_runs est
	runs=$((ROUNDS * ${#FILES[@]} * ${#TARGETS[@]}))
	warm_runs=$(((WARM_S > 0) * ${#FILES[@]} * ${#TARGETS[@]}))
	est=$((runs * (DUR_S + 1) + warm_runs * (WARM_S + 1) + 20))
	log "plan: $ROUNDS round(s) x ${#FILES[@]} files x ${#TARGETS[@]} targets, wrk -t1 -c$CONNECTIONS -d$DURATION" \
		"(+ ${WARMUP} warm-up each); estimated ~$((est / 60))m$((est % 60))s $1"
}

# wait_idle: other work on the machine adds noise: wait (up to IDLE_WAIT
# seconds) for both cores to be nearly idle for a second before starting.
wait_idle() {
	local w b0 b1 busy0 busy1
	for ((w = 0; ; w++)); do
		b0=$(core_busy)
		sleep 1
		b1=$(core_busy)
		busy0=$(core_pct "$WRK_CPU" "$b0" "$b1" busy)
		busy1=$(core_pct "$SERVER_CPU" "$b0" "$b1" busy)
		((${busy0:-0} <= 10 && ${busy1:-0} <= 10)) && break
		if ((w == 0)); then
			log "cores $WRK_CPU/$SERVER_CPU are ${busy0}%/${busy1}% busy: waiting up to ${IDLE_WAIT}s for other work to finish"
		fi
		if ((w >= IDLE_WAIT)); then
			log "WARNING: still ${busy0}%/${busy1}% busy: measuring anyway, expect noise (see the other% column)"
			break
		fi
	done
}

# ---------------------------------------------------------------- cleanup
# make_tmp creates $TMP and installs the traps that stop, by PID, every
# process recorded in PIDS (and a wrk run in progress) on any exit.
make_tmp() {
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/tailor-bench.XXXXXX")
	chmod 755 "$TMP" # nginx workers may run as nobody: they must reach www/
	PIDS=()          # every server this script started, stopped in reverse
	WRK_PID=""       # the wrk run in progress, if any
	trap cleanup EXIT
	trap 'log "interrupted"; exit 130' INT
	trap 'log "terminated"; exit 143' TERM
}

stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do # up to 10 s, then SIGKILL
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop on SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	[[ -n $WRK_PID ]] && stop_pid "$WRK_PID"
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${PIDS[i]}"
	done
	if [[ $KEEP_TMP == 1 || $rc != 0 ]]; then
		log "temporary files kept in $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}

# ---------------------------------------------------------------- ports
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
USED_PORTS=" "
# take_port VAR: a free loopback port, different from those taken before.
take_port() {
	local p
	for ((p = 20000 + RANDOM % 20000; ; p++)); do
		[[ $USED_PORTS == *" $p "* ]] && continue
		port_in_use "$p" && continue
		USED_PORTS+="$p "
		printf -v "$1" %s "$p"
		return
	done
}

# ---------------------------------------------------------------- content
# ---------------------------------------------------------------- visitor
# A returning visitor's cookies, signed the way tailor signs them (SPEC
# "Visitor identity"), with openssl: the scripts' tailors are configured
# with COOKIE_KEY.
COOKIE_KEY=bench-cookie-key-0123456789abcdef0123456789
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
# cookie_mac DATA: the base64url HMAC-SHA256 of DATA under COOKIE_KEY.
cookie_mac() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$COOKIE_KEY" -binary | b64url; }
# new_visitor sets VISITOR (a fresh anonymous id) and ID_COOKIE, its
# signed tailor_id cookie.
new_visitor() {
	VISITOR=$(head -c 16 /dev/urandom | b64url)
	ID_COOKIE="tailor_id=v1.$VISITOR.$(cookie_mac "v1.$VISITOR")"
}
# state_cookie [STAGE [EXPOSED [INTERESTS]]]: VISITOR's signed tailor_state
# cookie (INTERESTS as tailor writes them: "running:12|trail:3"): a
# second visit, last seen 4 minutes from now (tailor takes up to 5 minutes
# of clock skew), so that it stays current through a run and no response
# carries a fresh one (a browser gets one at most once a minute, which a
# fixed wrk header cannot follow). The MAC covers "s1." + id + "." +
# payload.
state_cookie() {
	local at=0 # the stage's time; 0 without a stage, as tailor writes it
	[[ -n ${1:-} ]] && at=$(date +%s)
	local state="2~$(($(date +%s) + 240))~${1:-}~$at~0~~${2:-}"
	[[ -n ${3:-} ]] && state+="~$(date +%s)~$3"
	echo "tailor_state=s1.$state.$(cookie_mac "s1.$VISITOR.$state")"
}

# gen_html writes a realistic ~100 KB article page: head with meta, inline
# CSS and JSON-LD, header/nav, an article with headings, paragraphs, links,
# lists, figures and a table, a sidebar, a footer and inline scripts.
gen_html() {
	awk -v target=102400 'BEGIN {
		srand(42)
		nw = split("the of and to in is that for it as with was on be by this are from at or " \
			"an which have not has but their more can all were also been one other its into " \
			"edge proxy origin cache latency request response header visitor profile segment " \
			"content page render personalization rule template stream buffer connection " \
			"performance network server client browser session cookie token region product " \
			"customer experience campaign market growth design system platform service data " \
			"analysis report quarter revenue team launch feature release update support", w, " ")
		print "<!DOCTYPE html>"
		print "<html lang=\"en\">"
		print "<head>"
		print "  <meta charset=\"utf-8\">"
		print "  <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		print "  <title>Edge Personalization at Scale: A Field Report | Example Corp Engineering</title>"
		print "  <meta name=\"description\" content=\"How we moved page personalization to the edge without hurting latency.\">"
		print "  <link rel=\"canonical\" href=\"https://www.example.com/blog/edge-personalization-field-report\">"
		print "  <link rel=\"stylesheet\" href=\"/assets/css/main.4f9c2a.css\">"
		print "  <link rel=\"preload\" href=\"/assets/fonts/inter-var.woff2\" as=\"font\" type=\"font/woff2\" crossorigin>"
		print "  <style>"
		print "    :root { --fg: #1d2433; --muted: #5b6478; --accent: #2f6fed; --bg: #ffffff; }"
		print "    body { margin: 0; font: 16px/1.6 Inter, system-ui, sans-serif; color: var(--fg); background: var(--bg); }"
		print "    .site-header { display: flex; align-items: center; justify-content: space-between; padding: 12px 24px; }"
		print "    .article { max-width: 760px; margin: 0 auto; padding: 24px; }"
		print "    .article h2 { margin-top: 2.2em; } .article figure { margin: 2em 0; }"
		print "    .sidebar { position: sticky; top: 24px; } table { border-collapse: collapse; width: 100%; }"
		print "    td, th { border-bottom: 1px solid #e3e6ee; padding: 6px 8px; text-align: left; }"
		print "  </style>"
		print "  <script type=\"application/ld+json\">{\"@context\":\"https://schema.org\",\"@type\":\"BlogPosting\",\"headline\":\"Edge Personalization at Scale\",\"datePublished\":\"2024-03-14\",\"author\":{\"@type\":\"Person\",\"name\":\"Dana Whitfield\"}}</script>"
		print "</head>"
		print "<body class=\"page page--article\">"
		print "  <header class=\"site-header\" data-component=\"header\">"
		print "    <a class=\"logo\" href=\"/\"><img src=\"/assets/img/logo.svg\" alt=\"Example Corp\" width=\"132\" height=\"28\"></a>"
		print "    <nav class=\"main-nav\" aria-label=\"Main\"><ul>"
		split("Products Solutions Pricing Docs Blog Customers Company Careers", nav, " ")
		for (i = 1; i <= 8; i++)
			printf "      <li><a href=\"/%s\" class=\"nav-link\" data-track=\"nav-%d\">%s</a></li>\n", tolower(nav[i]), i, nav[i]
		print "    </ul></nav>"
		print "    <div class=\"account\" id=\"account-slot\"><a href=\"/login\" class=\"btn btn--ghost\">Sign in</a> <a href=\"/signup\" class=\"btn btn--primary\">Start free trial</a></div>"
		print "  </header>"
		print "  <main id=\"content\">"
		print "  <article class=\"article\" itemscope itemtype=\"https://schema.org/BlogPosting\">"
		print "    <h1 itemprop=\"headline\">Edge Personalization at Scale: A Field Report</h1>"
		print "    <p class=\"byline\">By <span itemprop=\"author\">Dana Whitfield</span> &middot; <time datetime=\"2024-03-14\">March 14, 2024</time> &middot; 14 min read</p>"
		bytes = 3000; sec = 0
		while (bytes < target - 2500) {
			sec++
			line = sprintf("    <section id=\"section-%d\" class=\"article__section\">\n      <h2>%s</h2>\n", sec, sentence(5))
			for (p = 0; p < 4; p++) {
				para = "      <p>"
				for (s = 0; s < 4 + int(rand() * 3); s++) {
					para = para sentence(10 + int(rand() * 12))
					if (rand() < 0.25)
						para = para sprintf(" See <a href=\"/docs/%s-%s\" class=\"inline-link\">%s %s</a>.", w[1+int(rand()*nw)], w[1+int(rand()*nw)], w[1+int(rand()*nw)], w[1+int(rand()*nw)])
					para = para " "
				}
				line = line para "</p>\n"
			}
			if (sec % 3 == 0) {
				line = line "      <ul class=\"checklist\">\n"
				for (k = 0; k < 5; k++) line = line "        <li><strong>" w[1+int(rand()*nw)] ":</strong> " sentence(9) "</li>\n"
				line = line "      </ul>\n"
			}
			if (sec % 4 == 1)
				line = line sprintf("      <figure><img src=\"/assets/img/post/fig-%02d.webp\" alt=\"%s\" width=\"1200\" height=\"675\" loading=\"lazy\" decoding=\"async\"><figcaption>Figure %d. %s</figcaption></figure>\n", sec, sentence(6), sec, sentence(12))
			if (sec % 5 == 2) {
				line = line "      <table class=\"data-table\"><thead><tr><th>Region</th><th>p50 (ms)</th><th>p99 (ms)</th><th>Hit ratio</th></tr></thead><tbody>\n"
				for (k = 0; k < 6; k++) line = line sprintf("        <tr><td>%s-%d</td><td>%.1f</td><td>%.1f</td><td>%.1f%%</td></tr>\n", w[1+int(rand()*nw)], k+1, 2+rand()*8, 20+rand()*80, 80+rand()*19)
				line = line "      </tbody></table>\n"
			}
			line = line "    </section>\n"
			printf "%s", line
			bytes += length(line)
		}
		print "  </article>"
		print "  <aside class=\"sidebar\"><h3>Related posts</h3><ul>"
		for (k = 1; k <= 6; k++) printf "    <li><a href=\"/blog/post-%d\">%s</a></li>\n", k, sentence(6)
		print "  </ul></aside>"
		print "  </main>"
		print "  <footer class=\"site-footer\"><p>&copy; 2024 Example Corp. All rights reserved.</p><p><a href=\"/privacy\">Privacy</a> &middot; <a href=\"/terms\">Terms</a> &middot; <a href=\"/cookies\">Cookie settings</a></p></footer>"
		print "  <script src=\"/assets/js/app.91be3d.js\" defer></script>"
		print "  <script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}gtag(\"js\",new Date());gtag(\"config\",\"G-EXAMPLE\");</script>"
		print "</body>"
		print "</html>"
	}
	function sentence(n,   s, i) {
		s = w[1+int(rand()*nw)]
		s = toupper(substr(s, 1, 1)) substr(s, 2)
		for (i = 1; i < n; i++) s = s " " w[1+int(rand()*nw)]
		return s "."
	}'
}

# ---------------------------------------------------------------- configs
USER_LINE=""
if [[ $(id -u) == 0 ]]; then USER_LINE="user root;"; fi

nginx_conf() { # nginx_conf NAME SERVER-BLOCK
	local name=$1 dir=$TMP/$1
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<EOC
$USER_LINE
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log error;
events { worker_connections 4096; }
http {
    types { text/html html; application/json json; application/octet-stream bin; }
    default_type application/octet-stream;
    access_log off;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    client_body_temp_path $dir/client_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
$2
}
EOC
}

# ---------------------------------------------------------------- build
# build_tailor builds ./cmd/tailor into $TMP unless TAILOR_BIN is set,
# retrying while the tree does not build (work may be landing).
build_tailor() {
	local attempt
	if [[ -z $TAILOR_BIN ]]; then
		TAILOR_BIN=$TMP/tailor
		for attempt in 1 2 3; do
			log "building tailor (attempt $attempt)"
			if (cd "$REPO" && go build -o "$TAILOR_BIN" ./cmd/tailor) 2>"$TMP/build.log"; then
				break
			fi
			cat "$TMP/build.log" >&2
			((attempt < 3)) || die "go build failed"
			log "build failed: retrying in 30 s"
			sleep 30
		done
	fi
	# A bare name is looked up in PATH; a relative path is made absolute,
	# so that the binary is found whatever directory a step runs in.
	if [[ $TAILOR_BIN != */* ]]; then
		TAILOR_BIN=$(command -v "$TAILOR_BIN") || die "no tailor binary named $TAILOR_BIN in PATH"
	fi
	[[ $TAILOR_BIN == /* ]] || TAILOR_BIN=$PWD/$TAILOR_BIN
	[[ -x $TAILOR_BIN ]] || die "no tailor binary at $TAILOR_BIN"
}

# ---------------------------------------------------------------- start
declare -A PID_OF # target -> pid whose CPU is measured (nginx: master; workers are summed in)

start_nginx() { # start_nginx NAME
	local name=$1 dir=$TMP/$1
	"$NGINX" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>"$dir/stderr" ||
		{ cat "$dir/stderr" >&2; die "nginx config $name invalid"; }
	"${SRV_PIN[@]}" "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' \
		2>>"$dir/stderr" &
	PIDS+=($!)
	PID_OF[$name]=$!
}

# start_tailor NAME CONFIG ADMIN-PORT: tailor serve with GOMAXPROCS=1 on
# the server core, waited for on its admin /healthz.
start_tailor() {
	GOMAXPROCS=1 "${SRV_PIN[@]}" "$TAILOR_BIN" serve --config "$2" 2>"$TMP/$1.log" &
	PIDS+=($!)
	PID_OF[$1]=$!
	wait_http "$1" "http://127.0.0.1:$3/healthz" "${PID_OF[$1]}"
}

wait_http() { # wait_http NAME URL PID
	local i comm
	for ((i = 0; i < 100; i++)); do
		kill -0 "$3" 2>/dev/null || die "$1 exited at start (logs in $TMP)"
		if curl -fsS -o /dev/null --max-time 1 "$2" 2>/dev/null; then
			comm=$(cat "/proc/$3/comm")
			# $! must be the server itself, not a wrapper we cannot measure.
			[[ $comm != taskset && $comm != *sh ]] || die "pid $3 is '$comm', not the $1 server"
			return 0
		fi
		sleep 0.1
	done
	die "$1 not answering at $2 (logs in $TMP)"
}

# ---------------------------------------------------------------- measure
CLK_TCK=$(getconf CLK_TCK)

children_of() {
	if command -v pgrep >/dev/null 2>&1; then
		pgrep -P "$1" || true
	else
		awk -v pp="$1" '{sub(/.*\) /, ""); if ($2 == pp) print FILENAME}' /proc/[0-9]*/stat 2>/dev/null |
			cut -d/ -f3
	fi
}

# cpu_ticks PID: utime+stime of PID and its children processes (nginx
# workers) in clock ticks.
cpu_ticks() {
	local total=0 p stat rest
	for p in "$1" $(children_of "$1"); do
		stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		rest=${stat##*) } # fields from 3 on; comm may hold spaces
		set -- $rest
		total=$((total + ${12} + ${13})) # fields 14 (utime) and 15 (stime)
	done
	echo "$total"
}

# to_ms converts wrk's latency notation (850.00us, 1.20ms, 1.05s) to ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else printf "nan" }'
}

# init_results creates $RESULTS, the per-run TSV run_wrk appends to.
init_results() {
	RESULTS=$TMP/results.tsv
	printf 'round\tfile\ttarget\treq_s\tp50_ms\tp99_ms\tproxy_us_req\torigin_us_req\twrk_cpu_pct\tcore_srv_pct\tother_pct\tnon2xx\tsock_err\n' >"$RESULTS"
}

# run_wrk ROUND FILE TARGET DURATION: one wrk run; ROUND=warm is not recorded.
# Leaves the wrk output's path in WRK_OUT and, unless warm, the requests
# wrk completed in WRK_REQS.
run_wrk() {
	local round=$1 f=$2 t=$3 dur=$4 out=$TMP/wrk-$1-$3-$2.txt
	local p0 o0 p1 o1 b0 b1 reqs rps p50 p99 non2xx sockerr
	WRK_OUT=$out WRK_REQS=""
	p0=$(cpu_ticks "${PID_OF[$t]}")
	o0=$(cpu_ticks "${PID_OF[origin]}")
	b0=$(core_busy)
	# wrk runs in the background and we `wait` for it: wrk handles SIGINT
	# itself, so a foreground wrk would swallow Ctrl-C and bash would carry
	# on; `wait` returns at once on a trapped signal. The `times` before and
	# after give wrk's own CPU time: it is the only child reaped in between.
	times >"$out.t0"
	"${WRK_PIN[@]}" wrk -t1 -c"$CONNECTIONS" -d"$dur" --latency -H "User-Agent: $BENCH_UA" "${WRK_ARGS[@]}" "${URL_BASE[$t]}/$f" >"$out" 2>&1 &
	WRK_PID=$!
	local rc=0
	wait "$WRK_PID" || rc=$?
	if ((rc > 128)); then
		log "interrupted (signal $((rc - 128))) during the $t /$f run"
		exit "$rc"
	fi
	WRK_PID=""
	((rc == 0)) || { cat "$out" >&2; die "wrk failed against $t /$f"; }
	times >"$out.t1"
	p1=$(cpu_ticks "${PID_OF[$t]}")
	o1=$(cpu_ticks "${PID_OF[origin]}")
	b1=$(core_busy)
	[[ $round == warm ]] && return 0

	reqs=$(awk '/ requests in /{print $1}' "$out")
	rps=$(awk '/^Requests\/sec:/{print $2}' "$out")
	[[ -n $reqs && -n $rps && $reqs -gt 0 ]] || { cat "$out" >&2; die "could not parse wrk output ($out)"; }
	WRK_REQS=$reqs
	p50=$(to_ms "$(awk '$1=="50%"{print $2}' "$out")")
	p99=$(to_ms "$(awk '$1=="99%"{print $2}' "$out")")
	non2xx=$(awk '/Non-2xx or 3xx responses:/{print $NF}' "$out")
	sockerr=$(awk '/Socket errors:/{gsub(",", ""); print $4+$6+$8+$10}' "$out")
	local pcpu ocpu cw cs st
	pcpu=$(awk -v d=$((p1 - p0)) -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d/hz*1e6/n}')
	ocpu=$(awk -v d=$((o1 - o0)) -v n="$reqs" -v hz="$CLK_TCK" 'BEGIN{printf "%.2f", d/hz*1e6/n}')
	# wrk's user+sys over its wall time ("... requests in 8.00s, ...").
	local wsec
	wsec=$(awk 'FNR==2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
		c[FILENAME] = t }
		END { printf "%.3f", c[ARGV[2]] - c[ARGV[1]] }' "$out.t0" "$out.t1")
	cw=$(awk -v w="$(awk '/ requests in /{sub(/s,$/, "", $4); print $4}' "$out")" -v c="$wsec" \
		'BEGIN { if (w > 0) printf "%.0f", 100 * c / w }')
	cs=$(core_pct "$SERVER_CPU" "$b0" "$b1" busy)
	# other%: CPU on the two cores not used by wrk, the origin or the proxy
	# (other processes, the hypervisor's steal), in % of one core.
	local ours=$((p1 - p0))
	[[ ${PID_OF[$t]} == "${PID_OF[origin]}" ]] || ours=$((ours + o1 - o0))
	st=nan
	if ((PIN)); then
		st=$(paste <(echo "$b0") <(echo "$b1") | awk -v a="$WRK_CPU" -v b="$SERVER_CPU" \
			-v ours="$ours" -v wsec="$wsec" -v hz="$CLK_TCK" '
			$1 == a || $1 == b { used += ($6 - $2) + ($8 - $4); wall = $7 - $3 }
			END { if (wall > 0) { o = 100 * (used - ours - wsec * hz) / wall; printf "%.0f", o < 0 ? 0 : o } }')
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$f" "$t" "$rps" "$p50" "$p99" \
		"$pcpu" "$ocpu" "${cw:-nan}" "${cs:-nan}" "${st:-nan}" "${non2xx:-0}" "${sockerr:-0}" >>"$RESULTS"
	local flag=""
	[[ ${non2xx:-0} != 0 ]] && flag+=" NON-2XX=$non2xx"
	[[ ${sockerr:-0} != 0 ]] && flag+=" SOCKET-ERRORS=$sockerr ($(grep 'Socket errors' "$out" | sed 's/^ *//'))"
	log "round $round $f $t: $rps req/s, p50 ${p50}ms, p99 ${p99}ms, ${pcpu}us CPU/req$flag"
}

# measure_all: a warm-up per target and file, then ROUNDS interleaved
# rounds. RUN_HOOK, when set, names a function called as
# RUN_HOOK pre|post ROUND FILE TARGET around every run.
measure_all() {
	local f t r k
	if ((WARM_S > 0)); then
		log "warm-up: ${WARMUP} per target and file (not recorded)"
		for f in "${FILES[@]}"; do
			for t in "${TARGETS[@]}"; do run_one warm "$f" "$t" "$WARMUP"; done
		done
	fi

	for ((r = 1; r <= ROUNDS; r++)); do
		for f in "${FILES[@]}"; do
			# Rotate the order each round so no target always runs first/last.
			for ((k = 0; k < ${#TARGETS[@]}; k++)); do
				t=${TARGETS[(k + r - 1) % ${#TARGETS[@]}]}
				run_one "$r" "$f" "$t" "$DURATION"
			done
		done
	done
}

run_one() {
	[[ -n ${RUN_HOOK:-} ]] && "$RUN_HOOK" pre "$@"
	run_wrk "$@"
	[[ -n ${RUN_HOOK:-} ]] && "$RUN_HOOK" post "$@"
	return 0
}

# ---------------------------------------------------------------- report
median() { sort -g | awk '{v[NR]=$1} END{ if (NR==0) {print "nan"; exit}
	if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2 }'; }
col() { # col FILE TARGET COLUMN-NUMBER: the values over the rounds
	awk -F'\t' -v f="$1" -v t="$2" -v c="$3" 'NR>1 && $2==f && $3==t {print $c}' "$RESULTS"
}

# report_table prints the table of medians, one row per file and target,
# fills MED[file/target] with the median req/s and PCPU[file/target] with
# the median proxy CPU per request, and sets problems=1 when a run had
# errors. A target that is the origin itself shows the origin's CPU in
# parentheses.
declare -A MED PCPU
problems=0
report_table() {
	local f t rps range non2xx sockerr errs pcpu tw=7 fw=10 dash fdash fmt
	for t in "${TARGETS[@]}"; do ((${#t} > tw)) && tw=${#t}; done
	for f in "${FILES[@]}"; do ((${#f} > fw)) && fw=${#f}; done
	printf -v dash '%*s' "$tw" ''
	printf -v fdash '%*s' "$fw" ''
	fmt="%-${fw}s %-${tw}s %8s %15s %8s %8s %11s %11s %5s %5s %6s %s\n"
	printf "$fmt" file target "req/s" "req/s min..max" "p50 ms" "p99 ms" "proxy us/r" "origin us/r" "wrk%" "core%" "other%" errors
	printf "$fmt" "${fdash// /-}" "${dash// /-}" -------- --------------- -------- -------- ----------- ----------- ----- ----- ------ ------
	for f in "${FILES[@]}"; do
		for t in "${TARGETS[@]}"; do
			rps=$(col "$f" "$t" 4 | median)
			MED[$f/$t]=$rps
			range=$(col "$f" "$t" 4 | sort -g | awk 'NR==1{lo=$1} {hi=$1} END{printf "%.0f..%.0f", lo, hi}')
			non2xx=$(col "$f" "$t" 12 | awk '{s+=$1} END{print s+0}')
			sockerr=$(col "$f" "$t" 13 | awk '{s+=$1} END{print s+0}')
			errs="none"
			if ((non2xx + sockerr > 0)); then
				errs="FLAG: non-2xx=$non2xx socket=$sockerr"
				problems=1
			fi
			pcpu=$(col "$f" "$t" 7 | median)
			PCPU[$f/$t]=$pcpu
			[[ ${PID_OF[$t]} == "${PID_OF[origin]}" ]] && pcpu="($(col "$f" "$t" 8 | median))"
			printf "$fmt" "$f" "$t" "$(printf %.0f "$rps")" "$range" \
				"$(col "$f" "$t" 5 | median)" "$(col "$f" "$t" 6 | median)" "$pcpu" \
				"$(col "$f" "$t" 8 | median)" "$(col "$f" "$t" 9 | median)" "$(col "$f" "$t" 10 | median)" \
				"$(col "$f" "$t" 11 | median)" "$errs"
		done
	done
}

# report_legend prints what the columns mean; the first line is the
# script's own (what "proxy us/r" is for its targets).
report_legend() {
	echo "$1"
	echo "origin us/r: the origin nginx's CPU per request in the same run."
	echo "wrk%: wrk's own CPU use (near 100 = wrk is the limit). core%: busy share of core $SERVER_CPU (origin + proxy + anything else)."
	echo "other%: CPU taken on the two cores by anything but wrk, origin and proxy (other processes, hypervisor steal),"
	echo "        in % of one core: ~5-10 is the usual floor (unattributed kernel work); well above it, the run was"
	echo "        disturbed: trust the us/r columns over req/s."
	if ((problems)); then
		echo "WARNING: some runs had non-2xx responses or socket errors (see the errors column; wrk output in $TMP)."
		KEEP_TMP=1
	fi
}

# proxy_nginx_conf writes the proxy nginx's config: the usual keep-alive
# proxy_pass setup to the origin, buffers left at their defaults (see
# NGINX_PROXY_EXTRA). The Host and X-Forwarded-* headers mirror what tailor
# sends, so both proxies do the same header work. Needs ORIGIN_PORT and
# NGINX_PORT.
proxy_nginx_conf() {
	nginx_conf nginx "
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            $NGINX_PROXY_EXTRA
        }
    }"
}

# ---------------------------------------------------------------- cache and rewrite counters
# metrics_setup makes RUN_HOOK record, around every tailor run, the admin
# /metrics counters before and after (ADMIN_OF[target] is the target's
# admin port): which compiled-page cache results and rewrite results the
# run produced, one row per run in $METRICS (personalize.sh, dynamic.sh).
metrics_setup() {
	METRICS=$TMP/metrics.tsv
	printf 'round\tfile\ttarget\twrk_reqs\thit\tmiss\trewritten\tother_results\tevictions\treuse\n' >"$METRICS"
	declare -gA M0=()
	RUN_HOOK=metrics_hook
}
scrape() { # scrape ADMIN-PORT: "hit miss rewritten other evictions reuse"
	curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" | awk '
		/^tailor_page_cache_requests_total\{.*result="hit"/ { h = $NF }
		/^tailor_page_cache_requests_total\{.*result="miss"/ { m = $NF }
		/^tailor_page_cache_requests_total\{.*result="reuse"/ { u = $NF }
		/^tailor_rewrites_total\{/ { if ($0 ~ /result="rewritten"/) rw = $NF; else o += $NF }
		/^tailor_page_cache_evictions_total / { ev = $NF }
		END { printf "%.0f %.0f %.0f %.0f %.0f %.0f\n", h, m, rw, o, ev, u }'
}
metrics_hook() { # metrics_hook pre|post ROUND FILE TARGET DURATION
	local when=$1 round=$2 f=$3 t=$4 now
	[[ -n ${ADMIN_OF[$t]:-} ]] || return 0
	now=$(scrape "${ADMIN_OF[$t]}") || die "$t: cannot read its admin /metrics"
	if [[ $when == pre ]]; then
		M0[$t]=$now
		return 0
	fi
	[[ $round == warm ]] && return 0
	paste -d' ' <(echo "${M0[$t]}") <(echo "$now") | awk -v r="$round" -v f="$f" -v t="$t" -v n="$WRK_REQS" '
		{ printf "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", r, f, t, n, $7-$1, $8-$2, $9-$3, $10-$4, $11-$5, $12-$6 }' >>"$METRICS"
}

# ---------------------------------------------------------------- slow-origin (ttfb.sh, bigpage.sh)
# slow_origin_and_tailor [ORIGIN-FLAGS...]: builds and starts bench/slow-origin
# on ORIGIN_PORT, then tailor on PROXY_PORT (admin ADMIN_PORT) in front of
# it with the rules in $TMP/rules; TPID is tailor's pid. Unpinned: these
# scripts measure latency and memory, not throughput.
slow_origin_and_tailor() {
	local i
	log "building slow-origin"
	(cd "$REPO" && go build -o "$TMP/slow-origin" ./bench/slow-origin)
	build_tailor
	"$TMP/slow-origin" -listen "127.0.0.1:$ORIGIN_PORT" "$@" 2>"$TMP/origin.log" &
	PIDS+=($!)
	cat >"$TMP/tailor.yaml" <<YAML
listen: "127.0.0.1:$PROXY_PORT"
origin: "http://127.0.0.1:$ORIGIN_PORT"
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
identity: { cookie: { keys: ["$COOKIE_KEY"], secure: false } }
rules: { dir: "$TMP/rules", watch: false }
YAML
	"$TAILOR_BIN" serve --config "$TMP/tailor.yaml" 2>"$TMP/tailor.log" &
	PIDS+=($!)
	TPID=$!
	wait_http tailor "http://127.0.0.1:$ADMIN_PORT/healthz" "$TPID"
	for ((i = 0; i < 100; i++)); do port_in_use "$ORIGIN_PORT" && break; sleep 0.1; done
	port_in_use "$ORIGIN_PORT" || die "slow-origin not listening (log in $TMP)"
}

#!/usr/bin/env bash
# tailor's rewrite of a page never seen before (rewrite.BenchmarkCompileRender:
# parse, match the five selectors, render) against lol-html's streaming
# rewrite of the same page with the same five rewrites (rewrite.mjs, the
# wasm build behind Cloudflare's HTMLRewriter), whose output is byte for
# byte the same (rewrite.TestRenderIsLolHTMLsOutput). Interleaved rounds,
# each side pinned to the same core; prints each round and the medians.
#
#   bash bench/lolhtml/compare.sh            # ROUNDS=5 SECONDS_EACH=3 CPU=1
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-5}
SECS=${SECONDS_EACH:-3}
CPU=${CPU:-1}
command -v node >/dev/null || { echo "compare.sh needs node (Debian's nodejs)" >&2; exit 1; }
[[ -d node_modules/html-rewriter-wasm ]] || npm install --no-audit --no-fund >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd ../.. && go test -c -o "$tmp/rewrite.test" ./rewrite)
go_ms=() lol_ms=() render_ns=() copy_ns=()
for ((r = 1; r <= ROUNDS; r++)); do
	out=$(cd ../../rewrite && taskset -c "$CPU" "$tmp/rewrite.test" -test.run '^$' \
		-test.bench '^Benchmark(CompileRender|Render|Copy)$' -test.benchtime "${SECS}s")
	g=$(awk '/^BenchmarkCompileRender/ {print $3/1e6}' <<<"$out")
	rn=$(awk '/^BenchmarkRender/ {print $3}' <<<"$out")
	cp=$(awk '/^BenchmarkCopy/ {print $3}' <<<"$out")
	l=$(taskset -c "$CPU" node rewrite.mjs --seconds "$SECS" | sed -E 's/.*: ([0-9.]+) ms per rewrite.*/\1/')
	printf 'round %d: tailor Compile+Render %.3f ms, lol-html %.3f ms; Render %s ns, Copy %s ns\n' "$r" "$g" "$l" "$rn" "$cp"
	go_ms+=("$g") lol_ms+=("$l") render_ns+=("$rn") copy_ns+=("$cp")
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
g=$(med "${go_ms[@]}") l=$(med "${lol_ms[@]}") rn=$(med "${render_ns[@]}") cp=$(med "${copy_ns[@]}")
printf 'median: a never-seen page: tailor %.3f ms, lol-html %.3f ms (tailor/lol-html %.2f)\n' "$g" "$l" "$(awk -v a="$g" -v b="$l" 'BEGIN{print a/b}')"
printf 'median: a cached page: Render %s ns, plain copy %s ns (Render/copy %.2f)\n' "$rn" "$cp" "$(awk -v a="$rn" -v b="$cp" 'BEGIN{print a/b}')"

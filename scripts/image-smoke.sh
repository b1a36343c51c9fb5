#!/usr/bin/env bash
# What the container image would run, checked without a Docker engine:
# builds tailor as the Dockerfile does, puts the binary alone in an empty
# root with examples/compose's config (its hosts pointed at loopback), and
# runs it there as the distroless image's user (65532) against a real NATS
# server and a one-page site. Checks: a static binary, a rewritten page,
# `tailor health` exit 0, a clean stop on SIGTERM. Needs root (chroot).
# Loopback ports 13000, 14222, 18080, 19090; everything it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work" || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; cat "$f" >&2; done; exit 1; }

echo "building as the Dockerfile does"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=smoke" -o "$work/tailor" ./cmd/tailor
file "$work/tailor" | grep -q 'statically linked' || fail "the binary is not static: $(file "$work/tailor")"
go build -o "$work/nats-server" github.com/nats-io/nats-server/v2

root="$work/root"
mkdir -p "$root/usr/local/bin" "$root/etc/tailor/compose" "$root/tmp" "$root/home/nonroot"
chmod 1777 "$root/tmp"
chown 65532:65532 "$root/home/nonroot"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
cp "$work/tailor" "$root/usr/local/bin/"
cp -r examples/rules examples/fragments "$root/etc/tailor/"
sed -e 's|nats://nats:4222|nats://127.0.0.1:14222|' -e 's|host.docker.internal:3000|127.0.0.1:13000|' \
	-e 's|":8080"|"127.0.0.1:18080"|' -e 's|0.0.0.0:9090|127.0.0.1:19090|' \
	examples/compose/tailor.yaml >"$root/etc/tailor/compose/tailor.yaml"

mkdir -p "$work/site"
printf '<!DOCTYPE html><html><body><p class="greeting">Welcome!</p><section id="hero"><h1>Hi</h1></section></body></html>' >"$work/site/index.html"
python3 -m http.server 13000 --bind 127.0.0.1 --directory "$work/site" >"$work/site.log" 2>&1 &
pids+=($!)
"$work/nats-server" -js -sd "$work/nats" -a 127.0.0.1 -p 14222 >"$work/nats.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
	curl -sf -o /dev/null http://127.0.0.1:13000/ && break
	sleep 0.1
done

# As the image runs it: only TAILOR_CONFIG and the compose file's secrets.
# (An array, not a function: $! must be tailor's own PID.)
in_image=(env -i TAILOR_CONFIG=/etc/tailor/compose/tailor.yaml TAILOR_COOKIE_KEY=image-smoke-cookie-key-of-32-bytes
	/usr/sbin/chroot --userspec=65532:65532 "$root" /usr/local/bin/tailor)
"${in_image[@]}" serve >"$work/tailor.log" 2>&1 &
tailor_pid=$!
pids+=("$tailor_pid")

for _ in $(seq 100); do
	"${in_image[@]}" health >/dev/null 2>&1 && break
	sleep 0.1
done
"${in_image[@]}" health || fail "tailor health did not exit 0"
page=$(curl -sf 'http://127.0.0.1:18080/?utm_campaign=spring-sale') || fail "no page through tailor"
grep -q 'Spring sale' <<<"$page" || fail "the page was not personalized: $page"
[ "$(ps -o user= -p "$tailor_pid")" = 65532 ] || fail "tailor does not run as 65532"

kill -TERM "$tailor_pid"
for _ in $(seq 100); do
	kill -0 "$tailor_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$tailor_pid" 2>/dev/null; then fail "tailor still runs 10 s after SIGTERM"; fi
wait "$tailor_pid" || fail "tailor exited $? on SIGTERM"
echo "ok: static binary, served and personalized as 65532 in an empty root, health 0, clean stop"

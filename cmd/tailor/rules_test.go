package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tailor-edge/tailor/internal/testkit"
	natsync "github.com/tailor-edge/tailor/sync"
)

// workstation is where rules are written and pushed from: a rules
// directory whose greeting comes from a fragment beside it, as in
// examples/, and a config naming the bucket at natsURL.
type workstation struct {
	config, rules, fragments string
}

func newWorkstation(t *testing.T, natsURL string) *workstation {
	t.Helper()
	dir := t.TempDir()
	w := &workstation{config: filepath.Join(dir, "tailor.yaml"), rules: filepath.Join(dir, "rules"), fragments: filepath.Join(dir, "fragments")}
	for _, d := range []string{w.rules, w.fragments} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.write(t, "rules/home.yaml", "pages:\n  - match: [\"/\"]\n    rules:\n      - id: greet\n        select: .greeting\n        replace: { file: ../fragments/greeting.html }\n")
	w.write(t, "tailor.yaml", fmt.Sprintf("nats: { url: %q, events_stream: '' }\nrules: { dir: rules, bucket: tailor_rules }\n", natsURL))
	return w
}

func (w *workstation) write(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(filepath.Dir(w.config), name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// greeting makes the greeting fragment say text.
func (w *workstation) greeting(t *testing.T, text string) {
	w.write(t, "fragments/greeting.html", `<p class="greeting">`+text+`</p>`)
}

// push writes the greeting text and pushes the rules as a new version.
func (w *workstation) push(t *testing.T, text string) {
	t.Helper()
	w.greeting(t, text)
	if code, out, errs := runBounded(t, 15*time.Second, "rules", "push", "--config", w.config); code != exitOK {
		t.Fatalf("push: exit %d, %q\n%s", code, out, errs)
	}
}

// edgeConfig writes the config of an edge on natsURL with a data dir and
// a rules directory of its own (which does not exist: its rules come from
// the bucket alone), and returns it with the edge's addresses.
func edgeConfig(t *testing.T, natsURL, origin string) (path, listen, admin string) {
	t.Helper()
	dir := t.TempDir()
	listen, admin = freeAddr(t), freeAddr(t)
	path = filepath.Join(dir, "tailor.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`listen: %q
origin: %q
admin: { listen: %q }
nats: { url: %q, data_dir: data, events_stream: '' }
rules: { dir: rules, bucket: tailor_rules }
debug: { decision_header: true }
`, listen, origin, admin, natsURL)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, listen, admin
}

// greetingOf returns the greeting edge serves and the version its decision
// header names.
func greetingOf(edge string) (greeting, version string, err error) {
	resp, err := http.Get("http://" + edge + "/")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	m := regexp.MustCompile(`<p class="greeting">(.*?)</p>`).FindSubmatch(b)
	if m == nil {
		return "", "", fmt.Errorf("no greeting in %q", b)
	}
	if v := regexp.MustCompile(`version=(\d+)`).FindStringSubmatch(resp.Header.Get("X-Tailor-Decision")); v != nil {
		version = v[1]
	}
	return string(m[1]), version, nil
}

// servesVersion checks that edge serves greeting as version n.
func servesVersion(edge, greeting string, n int) func() error {
	return func() error {
		g, v, err := greetingOf(edge)
		if err != nil {
			return err
		}
		if g != greeting || v != fmt.Sprint(n) {
			return fmt.Errorf("%s serves %q as version %q, want %q as version %d", edge, g, v, greeting, n)
		}
		return nil
	}
}

func historyLines(t *testing.T, config string) []string {
	t.Helper()
	code, out, errs := runBounded(t, 15*time.Second, "rules", "history", "--config", config)
	if code != exitOK {
		t.Fatalf("tailor rules history: exit %d\n%s", code, errs)
	}
	return strings.Split(strings.TrimSpace(out), "\n")[1:] // past the heading
}

// Three edges on a three-node cluster, each with nothing on its disk, serve
// every pushed version within a second; a push that does not validate
// changes nothing; a rollback serves the old files under a new number.
func TestRulesPushReachesEveryEdge(t *testing.T) {
	cluster := testkit.Cluster(t, 3)
	origin := greetingOrigin(t)
	var edges []string
	for _, srv := range cluster {
		// Three edges, three processes, each with its own empty folder
		// and its own NATS node.
		path, listen, admin := edgeConfig(t, srv.ClientURL(), origin)
		serveProcess(t, path, admin)
		edges = append(edges, listen)
	}
	ws := newWorkstation(t, cluster[0].ClientURL())

	const pushes = 20
	var lat []time.Duration
	var pushTime []time.Duration
	for i := 1; i <= pushes; i++ {
		text := fmt.Sprintf("Hello from version %d", i)
		ws.greeting(t, text)
		start := time.Now()
		code, out, errs := runBounded(t, 15*time.Second, "rules", "push", "--config", ws.config, "--message", fmt.Sprint("push ", i))
		if code != exitOK || !strings.HasPrefix(out, fmt.Sprintf("pushed version %d ", i)) {
			t.Fatalf("push %d: exit %d, %q\n%s", i, code, out, errs)
		}
		published := time.Now()
		pushTime = append(pushTime, published.Sub(start))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, edge := range edges {
			wg.Go(func() {
				ok := testkit.Within(5*time.Second, 2*time.Millisecond, func() bool { return servesVersion(edge, text, i)() == nil })
				mu.Lock()
				defer mu.Unlock()
				if !ok {
					t.Errorf("push %d: %v", i, servesVersion(edge, text, i)())
				}
				lat = append(lat, time.Since(start))
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	slices.Sort(lat)
	slices.Sort(pushTime)
	p50, p99 := lat[len(lat)/2], lat[(len(lat)*99+99)/100-1]
	t.Logf("push-to-served (from the start of tailor rules push) over %d pushes x %d edges: p50 %v, p99 %v, max %v; tailor rules push itself: p50 %v, max %v",
		pushes, len(edges), p50, p99, lat[len(lat)-1], pushTime[len(pushTime)/2], pushTime[len(pushTime)-1])
	if p99 >= time.Second {
		t.Errorf("p99 push-to-served = %v, want < 1s", p99)
	}
	history := historyLines(t, ws.config)
	if len(history) != pushes || !regexp.MustCompile(`^20\s+\S+Z\s+\S+\s+[1-9][0-9]*\s+[0-9a-f]{64}\s+push 20$`).MatchString(history[pushes-1]) {
		t.Fatalf("history, oldest first, has %d lines, want %d ending with version 20:\n%s", len(history), pushes, strings.Join(history, "\n"))
	}

	// A push that does not validate: file:line:col, exit 1, nothing
	// published, the edges keep serving.
	ws.write(t, "rules/home.yaml", "pages:\n  - match: [\"/\"]\n    rules:\n      - id: greet\n        select: \"((\"\n        text: broken\n")
	code, _, errs := runBounded(t, 15*time.Second, "rules", "push", "--config", ws.config)
	if code != exitInvalid || !regexp.MustCompile(regexp.QuoteMeta(filepath.Join(ws.rules, "home.yaml"))+`:5:\d+: `).MatchString(errs) {
		t.Errorf("push of a bad selector: exit %d, %q; want 1 and the problem at home.yaml:5:col", code, errs)
	}
	if got := historyLines(t, ws.config); len(got) != pushes {
		t.Errorf("after a failed push the history has %d versions, want %d", len(got), pushes)
	}
	last := fmt.Sprintf("Hello from version %d", pushes)
	for _, edge := range edges {
		if err := servesVersion(edge, last, pushes)(); err != nil {
			t.Error(err)
		}
	}

	// Rollback: version 5's files, as version 21.
	code, out, errs := runBounded(t, 15*time.Second, "rules", "rollback", "5", "--config", ws.config)
	if code != exitOK || !strings.HasPrefix(out, "pushed version 21 to tailor_rules: rollback to 5") {
		t.Fatalf("rollback 5: exit %d, %q\n%s", code, out, errs)
	}
	for _, edge := range edges {
		testkit.CheckFor(t, time.Second, 5*time.Millisecond, servesVersion(edge, "Hello from version 5", 21))
	}
	if got := historyLines(t, ws.config); len(got) != pushes+1 || !strings.HasSuffix(got[pushes], "rollback to 5") {
		t.Errorf("history after the rollback:\n%s", strings.Join(got, "\n"))
	}
	if code, _, _ := runBounded(t, 15*time.Second, "rules", "rollback", "99", "--config", ws.config); code != exitUsage {
		t.Errorf("rollback to a version that does not exist: exit %d, want %d", code, exitUsage)
	}
}

// startEdge runs "tailor serve" on the config at path until the returned
// stop is called, and waits for it to be ready.
func startEdge(t *testing.T, path, admin string) (stop func()) {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- NewMain(io.Discard, logs).Run(ctx, []string{"serve", "--config", path}) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if code := <-done; code != exitOK {
				t.Errorf("serve exit code = %d, want 0\n%s", code, logs.String())
			}
		})
	}
	t.Cleanup(stop)
	waitReady(t, admin, 20*time.Second, logs.String)
	return stop
}

func readyz(admin string) string {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// An edge started while NATS is down serves the version it served last,
// from its disk, then catches up with what was pushed meanwhile once NATS
// is back.
func TestEdgeStartsWithItsLastVersionWhileNATSIsDown(t *testing.T) {
	natsDir, port := t.TempDir(), testkit.FreePort(t)
	srv := testkit.JetStream(t, natsDir, port)
	url := srv.ClientURL()
	path, listen, admin := edgeConfig(t, url, greetingOrigin(t))
	ws := newWorkstation(t, url)
	ws.push(t, "first")
	stop := startEdge(t, path, admin)
	testkit.CheckFor(t, 5*time.Second, 5*time.Millisecond, servesVersion(listen, "first", 1))
	stop()
	ws.push(t, "second") // while the edge is down
	srv.Shutdown()
	srv.WaitForShutdown()

	startEdge(t, path, admin)
	if err := servesVersion(listen, "first", 1)(); err != nil {
		t.Fatalf("with NATS down, the restarted edge: %v", err)
	}
	if got := readyz(admin); got != "ready\nrules version 1\n" {
		t.Errorf("/readyz = %q, want version 1", got)
	}
	testkit.JetStream(t, natsDir, port)
	testkit.CheckFor(t, 10*time.Second, 10*time.Millisecond, servesVersion(listen, "second", 2))
	if got := readyz(admin); got != "ready\nrules version 2\n" {
		t.Errorf("/readyz after catching up = %q, want version 2", got)
	}
}

// examples/ keeps its fragments beside the rules directory, as
// ../fragments: a push carries them, at the same place relative to the
// rules, and nothing the rules do not load.
func TestPushCarriesFragmentsOutsideTheRulesDirectory(t *testing.T) {
	v, err := packRules("../../examples/rules", "me", "why")
	if err != nil {
		t.Fatal(err)
	}
	if v.Dir != "rules" {
		t.Errorf("Dir = %q, want rules", v.Dir)
	}
	files, err := v.Files()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, name)
		}
		return err
	})
	for _, want := range []string{"rules/00-journey.yaml", "rules/10-home.yaml", "fragments/hero-vip.html"} {
		if !slices.Contains(names, want) {
			t.Errorf("the pushed files %q lack %s", names, want)
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "rules/") && !strings.HasPrefix(n, "fragments/") {
			t.Errorf("the push carries %s, which the rules do not load", n)
		}
	}
}

func TestRulesCommandsWithoutABucketOrArguments(t *testing.T) {
	noBucket := writeFile(t, "tailor.yaml", "nats: { url: 'nats://127.0.0.1:1' }\n")
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"rules"}, exitUsage},
		{[]string{"rules", "publish"}, exitUsage},
		{[]string{"rules", "rollback", "--config", noBucket}, exitUsage},
		{[]string{"rules", "rollback", "two", "--config", noBucket}, exitUsage},
		{[]string{"rules", "history", "--config", noBucket}, exitInvalid},
		{[]string{"rules", "rollback", "2", "--config", noBucket}, exitInvalid},
	} {
		code, _, errs := runBounded(t, 10*time.Second, tc.args...)
		if code != tc.want {
			t.Errorf("tailor %q: exit %d, want %d\n%s", tc.args, code, tc.want, errs)
		}
	}
}

// An edge killed while it loaded version 2 (the marker it wrote before
// loading is still there) does not try 2 again when it restarts: it
// serves 1, says so, and takes 3 when it comes.
func TestEdgeDoesNotRetryARuleVersionThatCrashedIt(t *testing.T) {
	srv := testkit.JetStream(t, "", -1)
	path, listen, admin := edgeConfig(t, srv.ClientURL(), greetingOrigin(t))
	ws := newWorkstation(t, srv.ClientURL())
	ws.push(t, "first")
	ws.push(t, "the one that killed it")
	kept := natsync.RuleCachePath(filepath.Join(filepath.Dir(path), "data"), "tailor_rules")
	if err := os.MkdirAll(filepath.Dir(kept), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kept+".trying", []byte("trying 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startEdge(t, path, admin)
	testkit.CheckFor(t, 5*time.Second, 5*time.Millisecond, servesVersion(listen, "first", 1))
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^tailor_rules_reloads_total\{result="error"\} 1$`).Match(b) {
		t.Errorf("metrics do not count the crashed version as a failed reload:\n%s", regexp.MustCompile(`(?m)^tailor_rules_reloads.*$`).FindAll(b, -1))
	}
	ws.push(t, "third")
	testkit.CheckFor(t, 5*time.Second, 5*time.Millisecond, servesVersion(listen, "third", 3))

	// Number 2 was the old bucket's: once the bucket is created again,
	// its own version 2 is no longer refused.
	deleteRuleBucket(t, srv.ClientURL())
	ws.push(t, "new one")
	testkit.CheckFor(t, 5*time.Second, 5*time.Millisecond, servesVersion(listen, "new one", 1))
	ws.push(t, "new two")
	testkit.CheckFor(t, 5*time.Second, 5*time.Millisecond, servesVersion(listen, "new two", 2))
	if _, err := os.Stat(kept + ".refused"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old bucket's refused versions are still kept (%v)", err)
	}
}

// deleteRuleBucket deletes the bucket tailor_rules at url, as an operator
// with the nats CLI would.
func deleteRuleBucket(t *testing.T, url string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(context.Background(), "tailor_rules"); err != nil {
		t.Fatal(err)
	}
}

// An edge whose kept copy is version 3 of a bucket since deleted and
// created again serves the new bucket's version 1 once it is pushed,
// whether the bucket was recreated while the edge was down or while it
// ran, rather than waiting for a version numbered past 3.
func TestEdgeFollowsARecreatedBucketFromVersionOne(t *testing.T) {
	srv := testkit.JetStream(t, "", -1)
	url := srv.ClientURL()
	path, listen, admin := edgeConfig(t, url, greetingOrigin(t))
	ws := newWorkstation(t, url)
	for _, g := range []string{"a1", "a2", "a3"} {
		ws.push(t, g)
	}
	stop := startEdge(t, path, admin)
	testkit.CheckFor(t, 5*time.Second, 5*time.Millisecond, servesVersion(listen, "a3", 3))
	stop()

	deleteRuleBucket(t, url) // while the edge is down
	startEdge(t, path, admin)
	if err := servesVersion(listen, "a3", 3)(); err != nil { // kept copy: fail open
		t.Fatalf("before the new bucket has a version, the edge: %v", err)
	}
	ws.push(t, "b1")
	testkit.CheckFor(t, 5*time.Second, 5*time.Millisecond, servesVersion(listen, "b1", 1))

	ws.push(t, "b2")
	ws.push(t, "b3")
	testkit.CheckFor(t, 5*time.Second, 5*time.Millisecond, servesVersion(listen, "b3", 3))
	deleteRuleBucket(t, url) // while the edge runs
	ws.push(t, "c1")
	testkit.CheckFor(t, 10*time.Second, 10*time.Millisecond, servesVersion(listen, "c1", 1))
}

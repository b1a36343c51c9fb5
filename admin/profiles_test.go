//go:build !nonats

package admin

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tailor-edge/tailor/config"
	natsync "github.com/tailor-edge/tailor/sync"
	"github.com/tailor-edge/tailor/sync/embedded"
)

// startStore starts an in-process NATS server with JetStream and opens
// the profile bucket on it; both stop when the test ends.
func startStore(t *testing.T) *natsync.Store {
	t.Helper()
	srv, err := embedded.Start(t.TempDir(), "127.0.0.1:-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := natsync.Open(context.Background(), natsync.Options{Server: srv, Bucket: "tailor_profiles", Name: "admin test"})
	if err != nil {
		srv.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(store.Close) // and the server
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := store.KV(ctx); err != nil {
		t.Fatalf("open the bucket: %v", err)
	}
	return store
}

func TestAdminProfilesAPI(t *testing.T) {
	store := startStore(t)
	const adminToken = "s3cret-admin-token"
	a := startAdmin(t, func(c *config.Config, o *Options) {
		c.Admin.Token = adminToken
		o.Profiles = store
	})
	doc := `{"id":"cust-5","segments":["vip"],"stage":"intent","traits":{"first_name":"Lou"},"x-unknown":1}`
	for _, c := range []struct {
		name, method, path, tok, body string
		status                        int
		contains                      string
	}{
		{"no token", "GET", "/v1/profiles/cust-5", "", "", 401, "bearer"},
		{"encoded prefix", "GET", "/v1/profiles%2Fcust-5", adminToken, "", 400, "/v1/profiles/{id}"},
		{"two segments", "GET", "/v1/profiles/cust/5", adminToken, "", 400, "/v1/profiles/{id}"},
		{"no id", "GET", "/v1/profiles/", adminToken, "", 400, "/v1/profiles/{id}"},
		{"id too long", "GET", "/v1/profiles/" + strings.Repeat("i", 1025), adminToken, "", 400, "/v1/profiles/{id}"},
		{"wrong token", "GET", "/v1/profiles/cust-5", "s3cret-admin-tokeN", "", 401, "bearer"},
		{"absent", "GET", "/v1/profiles/cust-5", adminToken, "", 404, "no profile"},
		{"put", "PUT", "/v1/profiles/cust-5", adminToken, doc, 200, `"revision"`},
		{"get", "GET", "/v1/profiles/cust-5", adminToken, "", 200, doc},
		{"bad json", "PUT", "/v1/profiles/cust-5", adminToken, `{"id":`, 400, "invalid profile"},
		{"no id in the document", "PUT", "/v1/profiles/cust-5", adminToken, `{"segments":["a"]}`, 400, `is missing`},
		{"id mismatch", "PUT", "/v1/profiles/cust-5", adminToken, `{"id":"cust-6"}`, 400, "cust-6"},
		{"bad score", "PUT", "/v1/profiles/cust-5", adminToken, `{"id":"cust-5","scores":{"e":"high"}}`, 400, "not a number"},
		{"oversized", "PUT", "/v1/profiles/cust-5", adminToken, `{"id":"cust-5","traits":{"x":"` + strings.Repeat("y", 70000) + `"}}`, 413, "at most 65536 bytes"},
		{"method", "POST", "/v1/profiles/cust-5", adminToken, doc, 405, "GET, PUT or DELETE"},
		{"encoded id", "PUT", "/v1/profiles/jane%40example.com", adminToken, `{"id":"jane@example.com"}`, 200, `"revision"`},
		{"get encoded", "GET", "/v1/profiles/jane%40example.com", adminToken, "", 200, `{"id":"jane@example.com"}`},
		{"encoded slash", "PUT", "/v1/profiles/a%2Fb", adminToken, `{"id":"a/b"}`, 200, `"revision"`},
		{"get encoded slash", "GET", "/v1/profiles/a%2Fb", adminToken, "", 200, `{"id":"a/b"}`},
		{"delete", "DELETE", "/v1/profiles/cust-5", adminToken, "", 204, ""},
		{"deleted", "GET", "/v1/profiles/cust-5", adminToken, "", 404, "no profile"},
		{"other endpoint", "GET", "/v1/segments", adminToken, "", 404, "no such endpoint"},
		{"other endpoint, no token", "GET", "/v1/segments", "", "", 401, "bearer"},
	} {
		var hdr []string
		if c.tok != "" {
			hdr = []string{"Authorization", "Bearer " + c.tok}
		}
		resp, body := call(t, c.method, a.url+c.path, c.body, hdr...)
		if resp.StatusCode != c.status || !strings.Contains(strings.ToLower(body), strings.ToLower(c.contains)) {
			t.Errorf("%s: %s %s = %d %q; want %d containing %q", c.name, c.method, c.path, resp.StatusCode, body, c.status, c.contains)
		}
		if ct := resp.Header.Get("Content-Type"); c.status != 204 && ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", c.name, ct)
		}
	}
	// 401 says how to authenticate; 405 says what is allowed; GET says
	// which revision it read.
	for _, c := range []struct{ method, path, tok, header, want string }{
		{"GET", "/v1/profiles/cust-5", "", "WWW-Authenticate", `Bearer realm="tailor"`},
		{"POST", "/v1/profiles/cust-5", adminToken, "Allow", "GET, PUT, DELETE"},
		{"GET", "/v1/profiles/jane%40example.com", adminToken, "X-Tailor-Revision", "2"},
	} {
		var hdr []string
		if c.tok != "" {
			hdr = []string{"Authorization", "Bearer " + c.tok}
		}
		if resp, _ := call(t, c.method, a.url+c.path, "", hdr...); resp.Header.Get(c.header) != c.want {
			t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, c.header, resp.Header.Get(c.header), c.want)
		}
	}
	// A body past what is read at all is refused too (the connection is
	// then closed, so this one goes to the handler in-process).
	req := httptest.NewRequest("PUT", "/v1/profiles/cust-5", io.MultiReader(strings.NewReader(`{"id":"cust-5","x":"`), strings.NewReader(strings.Repeat("y", maxBody))))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	a.server.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body of %d bytes: %d %s, want 413", maxBody+20, rec.Code, rec.Body)
	}

	// Without a token configured, /v1/* does not exist.
	plain := startAdmin(t, func(_ *config.Config, o *Options) { o.Profiles = store })
	if resp, body := call(t, "GET", plain.url+"/v1/profiles/x", "", "Authorization", "Bearer "+adminToken); resp.StatusCode != 404 {
		t.Errorf("with no admin.token, /v1/profiles = %d %q; want 404", resp.StatusCode, body)
	}
	// Without a store, the API says so.
	none := startAdmin(t, func(c *config.Config, _ *Options) { c.Admin.Token = adminToken })
	if resp, body := call(t, "GET", none.url+"/v1/profiles/x", "", "Authorization", "Bearer "+adminToken); resp.StatusCode != 503 || !strings.Contains(body, "no central store") {
		t.Errorf("with no store, /v1/profiles = %d %q; want 503", resp.StatusCode, body)
	}
}

package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tailor-edge/tailor/cache"
	natsync "github.com/tailor-edge/tailor/sync"
)

// ProfileStore is the central store as the admin API writes it. The sync
// package's Store is one.
type ProfileStore interface {
	// GetRaw returns the document stored under id and its revision; nil
	// when there is none.
	GetRaw(ctx context.Context, id string) ([]byte, uint64, error)
	// Put stores a profile document under id and returns its revision.
	Put(ctx context.Context, id string, doc []byte) (uint64, error)
	// Delete removes the profile stored under id.
	Delete(ctx context.Context, id string) error
}

var _ ProfileStore = (*natsync.Store)(nil)
var _ ProfileSource = (*natsync.Store)(nil)

// adminTimeout bounds one admin call to the central store.
const adminTimeout = 5 * time.Second

const profilesPrefix = "/v1/profiles/"

// authorized checks the bearer token in constant time. Both sides are
// hashed first, so that the comparison does not leak the token's length.
func (a *Admin) authorized(ctx *fasthttp.RequestCtx) bool {
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(string(h[:len(scheme)]), scheme) {
		return false
	}
	got := sha256.Sum256(h[len(scheme):])
	return subtle.ConstantTimeCompare(got[:], a.tokenHash[:]) == 1
}

// v1 serves the API under /v1/, for holders of the admin token.
func (a *Admin) v1(ctx *fasthttp.RequestCtx) {
	if !a.enabled {
		apiError(ctx, fasthttp.StatusNotFound, "the admin API is disabled: set admin.token")
		return
	}
	if a.limited(ctx) {
		return
	}
	if !a.authorized(ctx) {
		if len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) > 0 {
			a.loginFailed(ctx)
		}
		apiError(ctx, fasthttp.StatusUnauthorized, "missing or wrong bearer token")
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="tailor"`)
		return
	}
	path := string(ctx.Path())
	if !strings.HasPrefix(path, profilesPrefix) {
		apiError(ctx, fasthttp.StatusNotFound, "no such endpoint")
		return
	}
	// The id is cut from the path as sent, so that an encoded "/" stays
	// part of it; a path that spells the prefix itself encoded is refused.
	raw := string(ctx.Request.URI().PathOriginal())
	at := strings.Index(raw, profilesPrefix)
	if at < 0 {
		apiError(ctx, fasthttp.StatusBadRequest, "the path must be /v1/profiles/{id}, with the id URL-encoded")
		return
	}
	raw = raw[at+len(profilesPrefix):]
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	id, err := url.PathUnescape(raw)
	if err != nil || id == "" || len(id) > 1024 || strings.Contains(raw, "/") {
		apiError(ctx, fasthttp.StatusBadRequest, "the path must be /v1/profiles/{id}, with the id URL-encoded")
		return
	}
	store, ok := a.proxy.source.(ProfileStore)
	if !ok {
		apiError(ctx, fasthttp.StatusServiceUnavailable, "no central store configured: set nats.url or nats.embedded")
		return
	}
	c, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	switch string(ctx.Method()) {
	case fasthttp.MethodGet:
		doc, rev, err := store.GetRaw(c, id)
		switch {
		case err != nil:
			storeError(ctx, err)
		case doc == nil:
			apiError(ctx, fasthttp.StatusNotFound, "no profile with this id")
		default:
			ctx.Response.Header.Set("X-Tailor-Revision", strconv.FormatUint(rev, 10))
			ctx.SetContentType("application/json")
			ctx.SetBody(doc)
		}
	case fasthttp.MethodPut:
		body := ctx.Request.Body()
		if len(body) > cache.MaxProfileBytes {
			apiError(ctx, fasthttp.StatusRequestEntityTooLarge, "a profile document is at most "+strconv.Itoa(cache.MaxProfileBytes)+" bytes")
			return
		}
		p, err := cache.ParseProfile(body)
		if err != nil {
			apiError(ctx, fasthttp.StatusBadRequest, err.Error())
			return
		}
		// The document is stored as sent and GET serves it back: it must
		// be JSON as encoding/json reads it, which fastjson's parser is
		// more lenient than (control characters in strings).
		if !json.Valid(body) {
			apiError(ctx, fasthttp.StatusBadRequest, "the document is not valid JSON")
			return
		}
		if p.ID != id {
			apiError(ctx, fasthttp.StatusBadRequest, `the document's "id" is `+strconv.Quote(p.ID)+`, the path's is `+strconv.Quote(id))
			return
		}
		rev, err := store.Put(c, id, body)
		if err != nil {
			storeError(ctx, err)
			return
		}
		ctx.SetContentType("application/json")
		b, _ := json.Marshal(map[string]any{"id": id, "revision": rev})
		ctx.SetBody(append(b, '\n'))
	case fasthttp.MethodDelete:
		if err := store.Delete(c, id); err != nil {
			storeError(ctx, err)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		apiError(ctx, fasthttp.StatusMethodNotAllowed, "use GET, PUT or DELETE")
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, PUT, DELETE")
	}
}

func storeError(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, natsync.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		apiError(ctx, fasthttp.StatusServiceUnavailable, "the central store is unavailable; try again")
		return
	}
	apiError(ctx, fasthttp.StatusBadGateway, err.Error())
}

// apiError answers with {"error": msg}.
func apiError(ctx *fasthttp.RequestCtx, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

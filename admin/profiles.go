package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

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

// storeTimeout bounds one admin call to the central store.
const storeTimeout = 5 * time.Second

// maxBody is the most of a request body read. Bodies somewhat over the
// profile limit are read whole, so that the handler answers 413 on a
// connection it can keep: refused right after its headers, a body the
// client is still sending meets a reset, often before the client reads
// the 413 (seen as a flaky "connection reset by peer" in
// TestAdminProfilesAPI). Beyond this, the connection is closed after the
// 413.
const maxBody = 16 * cache.MaxProfileBytes

const (
	profilesPrefix = "/v1/profiles/"
	badProfilePath = "the path must be /v1/profiles/{id}, with the id URL-encoded"
)

var profileTooBig = "a profile document is at most " + strconv.Itoa(cache.MaxProfileBytes) + " bytes"

// profileRoutes adds the API under /v1/, for holders of the admin token.
// The id is one path segment, URL-encoded: an encoded "/" is part of it.
func (a *Admin) profileRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/profiles/{id}", a.api(a.profile(a.getProfile)))
	mux.Handle("PUT /v1/profiles/{id}", a.api(a.profile(a.putProfile)))
	mux.Handle("DELETE /v1/profiles/{id}", a.api(a.profile(a.deleteProfile)))
	mux.Handle("/v1/profiles/{id}", a.api(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", "GET, PUT, DELETE")
		apiError(w, http.StatusMethodNotAllowed, "use GET, PUT or DELETE")
	})))
	mux.Handle("/v1/", a.api(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A path under /v1/profiles/ that is not one segment more (or
		// spells the prefix itself encoded, "/v1/profiles%2Fid").
		if strings.HasPrefix(r.URL.Path, profilesPrefix) {
			apiError(w, http.StatusBadRequest, badProfilePath)
			return
		}
		apiError(w, http.StatusNotFound, "no such endpoint")
	})))
}

// api lets holders of the admin token through to h: it answers 404 when
// admin.token is not set, 429 to an address that has sent too many wrong
// tokens, and 401 to a request without the token.
func (a *Admin) api(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.enabled {
			apiError(w, http.StatusNotFound, "the admin API is disabled: set admin.token")
			return
		}
		if a.limited(w, r) {
			return
		}
		if !a.authorized(r) {
			if r.Header.Get("Authorization") != "" {
				a.loginFailed(r)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="tailor"`)
			apiError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// profileCall is one call of the profiles API on the profile id.
type profileCall func(ctx context.Context, w http.ResponseWriter, r *http.Request, store ProfileStore, id string)

// profile checks the id and that there is a store, and calls fn with a
// deadline for the store.
func (a *Admin) profile(fn profileCall) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if len(id) > 1024 {
			apiError(w, http.StatusBadRequest, badProfilePath)
			return
		}
		if a.opts.Profiles == nil {
			apiError(w, http.StatusServiceUnavailable, "no central store configured: set nats.url or nats.embedded")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
		defer cancel()
		fn(ctx, w, r, a.opts.Profiles, id)
	})
}

func (a *Admin) getProfile(ctx context.Context, w http.ResponseWriter, _ *http.Request, store ProfileStore, id string) {
	doc, rev, err := store.GetRaw(ctx, id)
	switch {
	case err != nil:
		storeError(w, err)
	case doc == nil:
		apiError(w, http.StatusNotFound, "no profile with this id")
	default:
		w.Header().Set("X-Tailor-Revision", strconv.FormatUint(rev, 10))
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}
}

func (a *Admin) putProfile(ctx context.Context, w http.ResponseWriter, r *http.Request, store ProfileStore, id string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if len(body) > cache.MaxProfileBytes || errors.As(err, new(*http.MaxBytesError)) {
		apiError(w, http.StatusRequestEntityTooLarge, profileTooBig)
		return
	}
	if err != nil {
		apiError(w, http.StatusBadRequest, "read the document: "+err.Error())
		return
	}
	p, err := cache.ParseProfile(body)
	if err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The document is stored as sent and GET serves it back: it must
	// be JSON as encoding/json reads it, which fastjson's parser is
	// more lenient than (control characters in strings).
	if !json.Valid(body) {
		apiError(w, http.StatusBadRequest, "the document is not valid JSON")
		return
	}
	if p.ID != id {
		apiError(w, http.StatusBadRequest, `the document's "id" is `+strconv.Quote(p.ID)+`, the path's is `+strconv.Quote(id))
		return
	}
	rev, err := store.Put(ctx, id, body)
	if err != nil {
		storeError(w, err)
		return
	}
	b, _ := json.Marshal(map[string]any{"id": id, "revision": rev})
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

func (a *Admin) deleteProfile(ctx context.Context, w http.ResponseWriter, _ *http.Request, store ProfileStore, id string) {
	if err := store.Delete(ctx, id); err != nil {
		storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func storeError(w http.ResponseWriter, err error) {
	if errors.Is(err, natsync.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		apiError(w, http.StatusServiceUnavailable, "the central store is unavailable; try again")
		return
	}
	apiError(w, http.StatusBadGateway, err.Error())
}

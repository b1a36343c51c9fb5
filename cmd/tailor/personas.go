package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tailor-edge/tailor/config"
	natsync "github.com/tailor-edge/tailor/sync"
	"github.com/tailor-edge/tailor/sync/embedded"
)

// demoSecret signs the demo personas' login tokens. It is public on
// purpose: the demo's tokens let anyone be Jane, which is the point.
const demoSecret = "tailor-demo-secret-not-for-production"

// demoPersona is a seeded profile and how to be them.
type demoPersona struct {
	key, id, who, doc string
}

var demoPersonas = []demoPersona{
	{"jane", "cust-jane", "Jane, a VIP runner who bought before",
		`{"id":"cust-jane","segments":["vip","runner"],"stage":"retention","traits":{"first_name":"Jane","city":"Lyon"},"scores":{"engagement":72}}`},
	{"sam", "cust-sam", "Sam, about to buy",
		`{"id":"cust-sam","segments":["newsletter"],"stage":"intent","traits":{"first_name":"Sam","city":"Berlin"},"scores":{"engagement":18}}`},
	{"ada", "cust-ada", "Ada, back again, browsing trail gear",
		`{"id":"cust-ada","segments":["hiker","returning"],"stage":"interest","traits":{"first_name":"Ada"}}`},
}

// demoSwitches is the persona switcher: a new anonymous visitor, the
// seeded personas (tokens[i] logs in as demoPersonas[i]) and a visitor
// who came from the spring-sale campaign.
func demoSwitches(tokens []string) []demoSwitch {
	out := []demoSwitch{{Key: "new", Label: "a new visitor", landing: "/"}}
	for i, p := range demoPersonas {
		label := p.who
		if name, about, ok := strings.Cut(p.who, ","); ok {
			label = name + " (" + strings.TrimSpace(about) + ")"
		}
		out = append(out, demoSwitch{Key: p.key, Label: label, token: tokens[i], landing: "/"})
	}
	return append(out, demoSwitch{Key: "spring-sale", Label: "a visitor from the spring-sale campaign", landing: "/?utm_campaign=spring-sale"})
}

// startDemoStore starts an embedded NATS server for the demo, seeds the
// personas' profiles and points cfg at it: visitors who present a
// persona's token get that persona's profile.
func startDemoStore(ctx context.Context, dir string, cfg *config.Config, log *slog.Logger) (stop func(), tokens []string, err error) {
	srv, err := embedded.Start(filepath.Join(dir, "nats"), "127.0.0.1:-1", nil)
	if err != nil {
		return nil, nil, err
	}
	stop = func() { srv.Shutdown(); srv.WaitForShutdown() }
	cfg.NATS.URL = srv.ClientURL()
	store, err := natsync.Open(ctx, natsync.Options{URL: cfg.NATS.URL, Bucket: cfg.NATS.Bucket, Name: "tailor demo seed", Logger: log})
	if err != nil {
		stop()
		return nil, nil, err
	}
	defer store.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := store.KV(sctx); err != nil {
		stop()
		return nil, nil, err
	}
	j := config.DefaultJWT()
	j.Algorithms = []string{"HS256"}
	j.Keys = []string{"hmac:" + demoSecret}
	j.Cookie = demoTokenCookie // the persona switcher logs browsers in with it
	cfg.Identity.JWT = j
	for _, p := range demoPersonas {
		if _, err := store.Put(sctx, p.id, []byte(p.doc)); err != nil {
			stop()
			return nil, nil, fmt.Errorf("seed persona %s: %w", p.id, err)
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": p.id, "exp": time.Now().Add(30 * 24 * time.Hour).Unix(),
		}).SignedString([]byte(demoSecret))
		if err != nil {
			stop()
			return nil, nil, err
		}
		tokens = append(tokens, tok)
	}
	return stop, tokens, nil
}

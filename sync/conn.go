package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultEmbeddedAddr is where the embedded server listens when the
// configuration names no URL, so that "tailor import" finds it.
const DefaultEmbeddedAddr = "127.0.0.1:4222"

// Reconnect backoff: quick at first, so that updates flow again within a
// second of a server coming back, then at most maxReconnectWait apart,
// forever.
const (
	minReconnectWait = 25 * time.Millisecond
	maxReconnectWait = 500 * time.Millisecond
)

// Options say where the central store is.
type Options struct {
	// URL lists servers, comma-separated; ignored with Server.
	URL string
	// Creds is a NATS credentials file; empty for none.
	Creds string
	// Server, when not nil, is an in-process server (package embedded)
	// that the Store connects to and shuts down on Close.
	Server Embedded
	// Bucket is the KV bucket of profiles.
	Bucket string
	// Name identifies this client to the servers (monitoring).
	Name string
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

// Embedded is an in-process NATS server; *server.Server is one.
type Embedded interface {
	ClientURL() string
	Shutdown()
	WaitForShutdown()
}

// Store is the profile bucket in the central store, reached over NATS. It
// is safe for concurrent use. Its methods never wait for a server that is
// down longer than their context allows.
type Store struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	srv    Embedded // nil unless embedded
	bucket string
	log    *slog.Logger

	mu    sync.Mutex
	kv    jetstream.KeyValue // nil until the bucket is opened
	ready chan struct{}      // closed when kv is set

	reconnects chan struct{} // a signal per reconnect, for the watch
	watch      watchCounters
	watching   atomic.Bool // Watch has started: Get may fill the cache
	stop       context.CancelFunc
	done       chan struct{}
}

// Open connects to the central store (o.Server, or o.URL) and opens the
// bucket, creating it when it is missing. A
// server that cannot be reached is not an error: the connection is retried
// forever in the background and the bucket opened once it is up; until
// then Get, Put and Delete fail fast with ErrUnavailable.
func Open(ctx context.Context, o Options) (*Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "sync")
	if o.Bucket == "" {
		return nil, errors.New("open profile store: no bucket named")
	}
	s := &Store{bucket: o.Bucket, log: log, ready: make(chan struct{}),
		reconnects: make(chan struct{}, 1), done: make(chan struct{})}
	urls := o.URL
	if o.Server != nil {
		s.srv = o.Server
		urls = o.Server.ClientURL()
	}
	if urls == "" {
		return nil, errors.New("open profile store: no NATS URL and no embedded server")
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: we closed it
				log.Warn("disconnected from nats; serving cached profiles", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to nats", "server", nc.ConnectedUrlRedacted())
			select {
			case s.reconnects <- struct{}{}:
			default:
			}
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("connected to nats", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		// With RetryOnFailedConnect only a bad option or URL gets here.
		s.shutdownServer()
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	if !nc.IsConnected() {
		log.Warn("nats is not reachable yet; retrying in the background", "url", Redact(urls))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		s.shutdownServer()
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	s.nc, s.js = nc, js
	bctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go s.openBucket(bctx)
	return s, nil
}

// reconnectDelay backs off from minReconnectWait to maxReconnectWait with
// jitter, so that many edges do not reconnect in step.
func reconnectDelay(attempts int) time.Duration {
	d := minReconnectWait << min(attempts, 10)
	d = min(d, maxReconnectWait)
	return d/2 + rand.N(d/2+1)
}

// openBucket opens the bucket, creating it when missing, retrying until it
// succeeds or ctx ends.
func (s *Store) openBucket(ctx context.Context) {
	defer close(s.done)
	for attempt := 0; ; attempt++ {
		kv, err := s.ensureBucket(ctx)
		if err == nil {
			s.mu.Lock()
			s.kv = kv
			s.mu.Unlock()
			close(s.ready)
			return
		}
		if attempt%20 == 0 {
			s.log.Warn("open profile bucket; retrying", "bucket", s.bucket, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(reconnectDelay(attempt)):
		}
	}
}

func (s *Store) ensureBucket(ctx context.Context) (jetstream.KeyValue, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s.keyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.bucket,
		Description: "tailor: visitor profiles, the edge copy of the central customer store",
		History:     1,
	})
}

// keyValue opens the KV bucket c.Bucket, creating it as c says when it is
// missing.
func (s *Store) keyValue(ctx context.Context, c jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := s.js.KeyValue(ctx, c.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return s.createKeyValue(ctx, c)
	}
	return kv, err
}

// createKeyValue creates the KV bucket c.Bucket, or opens it when another
// process created it meanwhile.
func (s *Store) createKeyValue(ctx context.Context, c jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := s.js.CreateKeyValue(ctx, c)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return s.js.KeyValue(ctx, c.Bucket)
	}
	return kv, err
}

// bucketNow returns the bucket when it is open and the connection is up,
// else ErrUnavailable: a request never waits for a server that is down.
func (s *Store) bucketNow() (jetstream.KeyValue, error) {
	if !s.nc.IsConnected() {
		return nil, ErrUnavailable
	}
	s.mu.Lock()
	kv := s.kv
	s.mu.Unlock()
	if kv == nil {
		return nil, ErrUnavailable
	}
	return kv, nil
}

// KV waits until the bucket is open or ctx ends.
func (s *Store) KV(ctx context.Context) (jetstream.KeyValue, error) {
	select {
	case <-s.ready:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.kv, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("open profile bucket %q: %w", s.bucket, ctx.Err())
	}
}

// Conn returns the NATS connection.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Connected reports whether the connection to NATS is up.
func (s *Store) Connected() bool { return s.nc.IsConnected() }

// Close drains the connection and stops the embedded server, if any.
func (s *Store) Close() {
	s.stop()
	<-s.done
	if err := s.nc.Drain(); err != nil {
		s.nc.Close()
	}
	for i := 0; i < 200 && !s.nc.IsClosed(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	s.nc.Close()
	s.shutdownServer()
}

func (s *Store) shutdownServer() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
}

// EmbeddedAddr returns where an embedded server listens for a configured
// URL list: the first URL's host:port, or DefaultEmbeddedAddr for none.
func EmbeddedAddr(urls string) (string, error) {
	if strings.TrimSpace(urls) == "" {
		return DefaultEmbeddedAddr, nil
	}
	return hostPort(strings.Split(urls, ",")[0])
}

// hostPort returns the host:port of a NATS URL, with 4222 for none.
func hostPort(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		raw = "nats://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	port := u.Port()
	if port == "" {
		port = "4222"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// Redact drops credentials from a URL list, for logs and messages.
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

package sync

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tailor-edge/tailor/internal/regular"
	"github.com/tailor-edge/tailor/rules"
)

// Rule versions live in a KV bucket of their own, one key per version,
// "v.<number>", each holding a whole RuleVersion (its metadata and the
// rule files as one archive) as JSON. A KV rather than an object store:
//   - a version is one message, so an edge sees all of it or none of it,
//     and never pairs the metadata of one push with the files of another;
//   - numbers come from Create, which the server refuses for a key that
//     exists (optimistic concurrency on the key's revision 0): two pushes
//     that pick the same number cannot both succeed, and the loser takes
//     the next;
//   - the watch delivers new versions with their content, and says when
//     it has caught up.
//
// The price is size: a version must fit in one message (the server's
// max_payload, 1 MiB by default). Rule files and fragments are text and
// are gzipped, so a rule set of several MiB fits; Push says so when one
// does not.
const ruleKeyPrefix = "v."

// Beside each version's key, "m.<number>" holds its metadata alone (the
// RuleVersion without its archive, with Size): "tailor rules history"
// reads those, not hundreds of archives of up to 16 MiB each. Push
// writes it after the version's key, so a meta key written after the
// version key of its number (a higher revision) describes that version;
// one missing (pushed by an older tailor) or older than the version's key
// (the version deleted and its number taken again) is not trusted, and
// the version itself is read instead. Edges never read meta keys.
const metaKeyPrefix = "m."

// Limits on a version's files once unpacked: an archive is small on the
// wire and could be a gzip bomb, and rule YAML takes some 100 times its
// size in memory while it parses (a 15 MiB rule file: 1.5 GB, 7.5 s).
// Every edge loads a version at once, so these bound what one push can
// make every edge spend. 16 MiB in all is the largest single rule file a
// local load reads (rules.MaxRuleFileBytes): any rule set that loads from
// disk in one file fits; a 76,000-rule file is some 10 MB.
const (
	// MaxRuleVersionBytes bounds a version's files, unpacked, in all.
	MaxRuleVersionBytes = 16 << 20
	// MaxRuleVersionFiles bounds how many files a version holds.
	MaxRuleVersionFiles = 1000
)

// maxRuleNumber is the largest version number Push gives: far beyond any
// real history, and far from wrapping around (a stray key
// "v.18446744073709551615" would otherwise make the next number 0).
const maxRuleNumber = 1 << 40

// ErrNoVersion: the bucket holds no rule version of that number, or none
// at all.
var ErrNoVersion = errors.New("no such rule version")

// RuleVersion is one published version of the rule files: immutable once
// pushed.
type RuleVersion struct {
	// Number counts versions from 1, in the order they were pushed.
	Number uint64 `json:"number"`
	// Time is when it was pushed.
	Time time.Time `json:"time"`
	// Author is who pushed it ($USER of the pushing machine).
	Author string `json:"author"`
	// Message says why.
	Message string `json:"message"`
	// Checksum is the SHA-256 of Archive, in hex.
	Checksum string `json:"checksum"`
	// Dir is the rules directory inside the archive: fragments named
	// relative to a rule file may sit beside it ("../fragments/x.html").
	Dir string `json:"dir"`
	// Archive is the files: a gzipped tar (PackRules). Versions leaves
	// it out.
	Archive []byte `json:"archive,omitempty"`
	// Size is the archive's length in bytes.
	Size int `json:"size,omitempty"`
	// BucketID, set by FollowRules, names the bucket the version came
	// from (BucketID): numbers compare only between versions of one
	// bucket. It is kept with the edge's copy on disk, never pushed.
	BucketID string `json:"bucket_id,omitempty"`
	// Unreadable, set by Versions only, says why the key of this number
	// holds no readable version; the other fields are then empty.
	Unreadable string `json:"-"`
}

// NewRuleVersion packs files (slash paths, relative, as PackRules takes
// them) with the rules directory dir among them into an unnumbered
// version; Push numbers it.
func NewRuleVersion(files map[string][]byte, dir, author, message string) (RuleVersion, error) {
	archive, err := PackRules(files)
	if err != nil {
		return RuleVersion{}, err
	}
	sum := sha256.Sum256(archive)
	return RuleVersion{Author: author, Message: message, Dir: dir, Archive: archive,
		Size: len(archive), Checksum: hex.EncodeToString(sum[:])}, nil
}

// PackRules makes the archive of a rule version: the files, by relative
// slash path, in a gzipped tar in name order with no times or owners, so
// that the same files always make the same archive and checksum.
func PackRules(files map[string][]byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for name := range files {
		if !fs.ValidPath(name) || name == "." {
			return nil, fmt.Errorf("pack rules: %q is not a relative slash path", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		data := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
			return nil, fmt.Errorf("pack rules: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("pack rules: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("pack rules: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pack rules: %w", err)
	}
	return buf.Bytes(), nil
}

// Files checks the archive against the checksum and returns its files, for
// rules.LoadFS(files, v.Dir).
func (v *RuleVersion) Files() (fs.FS, error) {
	sum := sha256.Sum256(v.Archive)
	if hex.EncodeToString(sum[:]) != v.Checksum {
		return nil, fmt.Errorf("rule version %d: the archive does not match its checksum", v.Number)
	}
	zr, err := gzip.NewReader(bytes.NewReader(v.Archive))
	if err != nil {
		return nil, fmt.Errorf("rule version %d: %w", v.Number, err)
	}
	// One byte more than allowed: reading it means the archive is too
	// large. At exactly the limit the tar reader would otherwise see a
	// clean end and drop the files after it without a word.
	lr := &io.LimitedReader{R: zr, N: MaxRuleVersionBytes + 1}
	tooLarge := func() error {
		return fmt.Errorf("rule version %d: %w: more than %d MiB unpacked", v.Number, ErrArchiveTooLarge, MaxRuleVersionBytes>>20)
	}
	tr := tar.NewReader(lr)
	files := fstest.MapFS{}
	for {
		h, err := tr.Next()
		if lr.N <= 0 {
			return nil, tooLarge()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("rule version %d: read archive: %w", v.Number, err)
		}
		if h.Typeflag != tar.TypeReg || !fs.ValidPath(h.Name) || h.Name == "." {
			return nil, fmt.Errorf("rule version %d: archive entry %q is not a regular file at a relative path", v.Number, h.Name)
		}
		if _, dup := files[h.Name]; dup {
			return nil, fmt.Errorf("rule version %d: archive holds %q twice", v.Number, h.Name)
		}
		if len(files) == MaxRuleVersionFiles {
			return nil, fmt.Errorf("rule version %d: %w: more than %d files", v.Number, ErrArchiveTooLarge, MaxRuleVersionFiles)
		}
		// The largest file a local load reads (a rule file); fragments
		// have a lower limit of their own, which rules.LoadFS applies.
		if h.Size > rules.MaxRuleFileBytes {
			return nil, fmt.Errorf("rule version %d: %w: %q is %d bytes, more than a rule file may be (%d)", v.Number, ErrArchiveTooLarge, h.Name, h.Size, rules.MaxRuleFileBytes)
		}
		data, err := io.ReadAll(tr)
		if lr.N <= 0 {
			return nil, tooLarge()
		}
		if err != nil {
			return nil, fmt.Errorf("rule version %d: read archive: %w", v.Number, err)
		}
		files[h.Name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	// A file where another needs a directory ("r" and "r/a.yaml") makes
	// a tree with two readings.
	for name := range files {
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			if _, ok := files[d]; ok {
				return nil, fmt.Errorf("rule version %d: archive entry %q is a file and the directory of %q", v.Number, d, name)
			}
		}
	}
	return files, nil
}

// RuleBucket is the KV bucket of rule versions.
type RuleBucket struct {
	kv         jetstream.KeyValue
	maxPayload int64
}

// RuleBucket opens the bucket of rule versions called name. It does not
// create it (CreateRuleBucket does, for a push): an edge or a reader
// that made it would make it with one replica, before the operator made
// it replicated (ErrNoBucket). It fails rather than waits when NATS is
// down.
func (s *Store) RuleBucket(ctx context.Context, name string) (*RuleBucket, error) {
	if !s.nc.IsConnected() {
		return nil, ErrUnavailable
	}
	kv, err := s.js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("open rule bucket %q: %w", name, ErrNoBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("open rule bucket %q: %w", name, err)
	}
	return &RuleBucket{kv: kv, maxPayload: s.nc.MaxPayload()}, nil
}

// CreateRuleBucket is RuleBucket, creating the bucket, with one
// replica, when it is missing: for "tailor rules push".
func (s *Store) CreateRuleBucket(ctx context.Context, name string) (*RuleBucket, error) {
	b, err := s.RuleBucket(ctx, name)
	if !errors.Is(err, ErrNoBucket) {
		return b, err
	}
	kv, err := s.createKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "tailor: numbered versions of the rule files (tailor rules push)",
		History:     1, // a version is never rewritten
	})
	if err != nil {
		return nil, fmt.Errorf("create rule bucket %q: %w", name, err)
	}
	return &RuleBucket{kv: kv, maxPayload: s.nc.MaxPayload()}, nil
}

func ruleKey(n uint64) string { return ruleKeyPrefix + strconv.FormatUint(n, 10) }

func metaKey(n uint64) string { return metaKeyPrefix + strconv.FormatUint(n, 10) }

func ruleNumber(key string) (uint64, bool) { return keyNumber(key, ruleKeyPrefix) }

func keyNumber(key, prefix string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(key, prefix), 10, 64)
	return n, err == nil && strings.HasPrefix(key, prefix) && n > 0
}

// numbers returns the numbers of the versions in the bucket, newest
// first. It reads keys only, not the archives.
func (b *RuleBucket) numbers(ctx context.Context) ([]uint64, error) {
	l, err := b.kv.ListKeysFiltered(ctx, ruleKeyPrefix+">")
	if err != nil {
		return nil, fmt.Errorf("list rule versions: %w", err)
	}
	var ns []uint64
	for k := range l.Keys() {
		if n, ok := ruleNumber(k); ok {
			ns = append(ns, n)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list rule versions: %w", err)
	}
	slices.SortFunc(ns, func(a, b uint64) int { return cmp.Compare(b, a) })
	return ns, nil
}

// Newest returns the newest version's number, 0 when there is none. It
// reads keys only, not the archives.
func (b *RuleBucket) Newest(ctx context.Context) (uint64, error) {
	ns, err := b.numbers(ctx)
	if err != nil || len(ns) == 0 {
		return 0, err
	}
	return ns[0], nil
}

// Push publishes v as the newest version: it numbers it one past the
// newest, stamps the time, and returns it as stored. Concurrent pushes get
// numbers of their own: a number taken meanwhile is refused by the server
// and the next is tried.
func (b *RuleBucket) Push(ctx context.Context, v RuleVersion) (RuleVersion, error) {
	n, err := b.Newest(ctx)
	if err != nil {
		return RuleVersion{}, err
	}
	v.Time = time.Now().UTC().Truncate(time.Millisecond)
	v.Size = len(v.Archive)
	v.BucketID = "" // the bucket's, not the version's: FollowRules sets it
	for attempt := 0; attempt < 100; attempt++ {
		if n >= maxRuleNumber {
			return RuleVersion{}, fmt.Errorf("push rule version: the bucket's newest key is %s, past the largest version number tailor gives (%d): delete that key (nats kv del) or push to a new bucket", ruleKey(n), uint64(maxRuleNumber))
		}
		v.Number = n + 1
		data, err := json.Marshal(v)
		if err != nil {
			return RuleVersion{}, err
		}
		if b.maxPayload > 0 && int64(len(data)) > b.maxPayload-1024 { // headroom for the headers
			return RuleVersion{}, fmt.Errorf("push rule version: %d bytes (archive %d) is more than the NATS server's max_payload of %d allows; raise max_payload or move large fragments out",
				len(data), len(v.Archive), b.maxPayload)
		}
		_, err = b.kv.Create(ctx, ruleKey(v.Number), data)
		if err == nil {
			// After the version, never before: a meta key with no
			// version behind it would list a version edges never see.
			// Put, not Create: a meta key left by a deleted version of
			// this number is replaced. Should it fail, the version is
			// pushed all the same and history reads the version itself.
			meta := v
			meta.Archive = nil
			if data, err := json.Marshal(meta); err == nil {
				b.kv.Put(ctx, metaKey(v.Number), data)
			}
			return v, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return RuleVersion{}, fmt.Errorf("push rule version %d: %w", v.Number, err)
		}
		n = v.Number // taken by a concurrent push
	}
	return RuleVersion{}, errors.New("push rule version: too many concurrent pushes; try again")
}

// Version returns version n: ErrNoVersion when there is none,
// ErrUnreadableVersion when its key holds something else.
func (b *RuleBucket) Version(ctx context.Context, n uint64) (RuleVersion, error) {
	e, err := b.kv.Get(ctx, ruleKey(n))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return RuleVersion{}, fmt.Errorf("rule version %d: %w", n, ErrNoVersion)
	}
	if err != nil {
		return RuleVersion{}, fmt.Errorf("read rule version %d: %w", n, err)
	}
	return decodeRuleVersion(e)
}

func decodeRuleVersion(e jetstream.KeyValueEntry) (RuleVersion, error) {
	var v RuleVersion
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return RuleVersion{}, fmt.Errorf("%s: %w: %v", e.Key(), ErrUnreadableVersion, err)
	}
	if n, _ := ruleNumber(e.Key()); n != v.Number {
		return RuleVersion{}, fmt.Errorf("%s: %w: it says it is number %d", e.Key(), ErrUnreadableVersion, v.Number)
	}
	return v, nil
}

// Versions returns every version, oldest first, without its archive
// (Size says how large it is). It reads the meta keys, and the versions'
// keys without their values: only a version whose meta key is missing or
// stale (pushed by an older tailor) is read whole. A key that holds no
// readable version is listed too, with its number and Unreadable set:
// one bad entry does not hide the history.
func (b *RuleBucket) Versions(ctx context.Context) ([]RuleVersion, error) {
	keys, err := b.entries(ctx, ruleKeyPrefix+">", jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("read rule versions: %w", err)
	}
	metas, err := b.entries(ctx, metaKeyPrefix+">")
	if err != nil {
		return nil, fmt.Errorf("read rule versions: %w", err)
	}
	revision := map[uint64]uint64{} // of each version's key
	for _, e := range keys {
		if n, ok := ruleNumber(e.Key()); ok {
			revision[n] = e.Revision()
		}
	}
	vs := make([]RuleVersion, 0, len(revision))
	for _, e := range metas {
		n, ok := keyNumber(e.Key(), metaKeyPrefix)
		if rev, there := revision[n]; !ok || !there || e.Revision() < rev { // no version, or an older one's
			continue
		}
		var v RuleVersion
		if json.Unmarshal(e.Value(), &v) != nil || v.Number != n {
			continue // read the version itself
		}
		v.Archive = nil
		vs = append(vs, v)
		delete(revision, n)
	}
	for n := range revision {
		v, err := b.Version(ctx, n)
		switch {
		case errors.Is(err, ErrNoVersion): // deleted meanwhile
			continue
		case errors.Is(err, ErrUnreadableVersion):
			v = RuleVersion{Number: n, Unreadable: err.Error()}
		case err != nil:
			return nil, err
		}
		v.Size = len(v.Archive)
		v.Archive = nil
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b RuleVersion) int { return cmp.Compare(a.Number, b.Number) })
	return vs, nil
}

// entries returns the bucket's entries under filter as they are now,
// deleted ones left out.
func (b *RuleBucket) entries(ctx context.Context, filter string, opts ...jetstream.WatchOpt) ([]jetstream.KeyValueEntry, error) {
	w, err := b.kv.Watch(ctx, filter, append(opts, jetstream.IgnoreDeletes())...)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var es []jetstream.KeyValueEntry
	for {
		select {
		case e := <-w.Updates():
			if e == nil { // all there is
				return es, nil
			}
			es = append(es, e)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// FollowRules hands apply the newest version of the bucket called name
// newer than have, then every newer one as it is pushed, until ctx ends.
// A version apply refuses (it does not load) is skipped: the next newer
// one is handed on when it comes, never an older one again. At the start
// and whenever the watch may have missed versions (a reconnect, a
// stall, NATS down at the start) it catches up from the newest, trying
// older ones still newer than have while the newest is refused. It waits
// for NATS as long as it must. caughtUp, when not nil, is called once,
// after the first catch-up: what the bucket held then has been handed on
// (at once when NATS answers that there is no such bucket yet).
//
// haveBucket is the BucketID of the bucket have came from ("": not
// known, a copy kept by an older tailor). When the bucket's differs (it
// was deleted and created again, or this is another cluster's), have
// says nothing about the bucket's numbers: FollowRules logs an error and
// hands on the bucket's newest version, whatever its number. Every
// version handed to apply carries the bucket's BucketID.
func (s *Store) FollowRules(ctx context.Context, name string, have uint64, haveBucket string, apply func(RuleVersion) error, caughtUp func()) {
	log := s.log.With("bucket", name)
	seen := have // the newest version handed to apply, taken or not
	bucketID := haveBucket
	// Versions apply refused, or that do not read, during a catch-up: a
	// retry goes on to older ones rather than trying them again.
	refused := map[uint64]bool{}
	saidNoBucket := false
	var b *RuleBucket
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(reconnectDelay(attempt)):
			}
		}
		if b == nil {
			var err error
			octx, cancel := context.WithTimeout(ctx, statTimeout)
			b, err = s.RuleBucket(octx, name)
			cancel()
			switch {
			case errors.Is(err, ErrNoBucket):
				if !saidNoBucket { // an edge may well start before the first push
					log.Warn("rule bucket does not exist yet; waiting for tailor rules push to create it, the rules serving stay")
					saidNoBucket = true
				}
				// No bucket holds no version: caught up with all there
				// is, so a starting edge need not wait for one.
				if caughtUp != nil {
					caughtUp()
					caughtUp = nil
				}
				continue
			case err != nil:
				if attempt%20 == 0 {
					log.Warn("open rule bucket; retrying, the rules serving stay", "err", err)
				}
				continue
			}
		}
		// Watch first, then catch up: a push between the two is seen by
		// both, and the second sighting is ignored (number <= seen).
		// Meta keys too, to skip them knowingly: each push writes one
		// after its version, and a watch blind to them would see the
		// bucket's revision pass the last one it delivered, and catch up
		// again after every push.
		w, err := b.kv.WatchFiltered(ctx, []string{ruleKeyPrefix + ">", metaKeyPrefix + ">"}, jetstream.UpdatesOnly(), jetstream.IgnoreDeletes())
		if err != nil {
			if attempt%20 == 0 {
				log.Warn("watch rule bucket; retrying", "err", err)
			}
			continue
		}
		head, err := b.catchUp(ctx, &seen, &bucketID, refused, apply, log)
		if err != nil {
			w.Stop()
			go drain(w)
			if attempt%20 == 0 {
				log.Warn("read rule bucket; retrying", "err", err)
			}
			continue
		}
		attempt = 0
		if caughtUp != nil {
			caughtUp()
			caughtUp = nil
		}
		b.follow(ctx, s, w, head, bucketID, &seen, apply, log)
		w.Stop()
		go drain(w)
	}
}

// catchUp hands apply the newest version newer than *seen that it takes,
// trying older ones while it refuses, and returns the bucket's newest
// revision. Each call to NATS has a deadline of its own, loading none:
// a version slow to be refused must not leave the older ones unread
// (which would make every retry start again from the same newest one).
// Versions refused, or unreadable, are noted in refused and not tried
// again. When the bucket is not *bucketID (unless that is ""), *seen and
// refused are of another bucket and are forgotten; *bucketID becomes the
// bucket's.
func (b *RuleBucket) catchUp(ctx context.Context, seen *uint64, bucketID *string, refused map[uint64]bool, apply func(RuleVersion) error, log *slog.Logger) (uint64, error) {
	kctx, cancel := context.WithTimeout(ctx, statTimeout)
	head, id, err := b.lastRevision(kctx)
	var ns []uint64
	if err == nil {
		ns, err = b.numbers(kctx)
	}
	cancel()
	if err != nil {
		return 0, err
	}
	var newest uint64
	if len(ns) > 0 {
		newest = ns[0]
	}
	if *bucketID != "" && *bucketID != id {
		log.Error("the rule bucket is not the one the version serving came from (deleted and created again, or another cluster's): following its newest version, whatever its number; the version serving stays until one loads",
			"serving", *seen, "serving_bucket_id", *bucketID, "bucket_id", id, "bucket_newest", newest)
		*seen = 0
		clear(refused)
	}
	*bucketID = id
	if newest < *seen {
		// Pushes numbered up to *seen are ignored here: the bucket was
		// recreated, or this edge's kept copy is another cluster's.
		log.Warn("the rule version serving is newer than the bucket's newest; pushes are ignored until one is numbered past it (bucket recreated, or a kept copy from another bucket?)",
			"serving", *seen, "bucket_newest", newest)
	}
walk:
	for _, n := range ns { // only the keys there are: no walk through gaps
		if n <= *seen {
			break
		}
		if refused[n] {
			continue
		}
		kctx, cancel := context.WithTimeout(ctx, statTimeout)
		v, err := b.Version(kctx, n)
		cancel()
		v.BucketID = id
		switch {
		case errors.Is(err, ErrNoVersion): // deleted meanwhile
			continue
		case errors.Is(err, ErrUnreadableVersion):
			log.Warn("rule version is not readable; trying the one before", "version", n, "err", err)
			refused[n] = true
			continue
		case err != nil:
			return 0, err
		}
		if err := apply(v); err != nil {
			log.Warn("rule version does not load; trying the one before", "version", n, "err", err)
			refused[n] = true
			continue
		}
		break walk
	}
	*seen = max(*seen, newest)
	return head, nil
}

// follow hands apply the versions w delivers until ctx ends or the watch
// must be re-created: it was closed, the connection came back, or the
// bucket has versions w did not deliver, or is no longer the bucket
// bucketID.
func (b *RuleBucket) follow(ctx context.Context, s *Store, w jetstream.KeyWatcher, last uint64, bucketID string, seen *uint64, apply func(RuleVersion) error, log *slog.Logger) {
	tick := time.NewTicker(idleCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			last = max(last, e.Revision())
			if _, ok := ruleNumber(e.Key()); !ok {
				continue // a meta key
			}
			v, err := decodeRuleVersion(e)
			if err != nil {
				log.Warn("rule version is not readable; the rules serving stay", "key", e.Key(), "err", err)
				continue
			}
			if v.Number <= *seen {
				continue
			}
			*seen = v.Number
			v.BucketID = bucketID
			if err := apply(v); err != nil {
				log.Warn("rule version does not load; the rules serving stay", "version", v.Number, "err", err)
			}
		case <-tick.C:
			if !s.nc.IsConnected() {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, statTimeout)
			head, id, err := b.lastRevision(sctx)
			cancel()
			if err == nil && (head > last || id != bucketID) {
				return // missed some, or the bucket was created again: catch up
			}
		}
	}
}

// lastRevision returns the bucket's newest revision and its identity
// (BucketID).
func (b *RuleBucket) lastRevision(ctx context.Context) (uint64, string, error) {
	st, err := b.kv.Status(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("read rule bucket status: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, "", errors.New("read rule bucket status: no stream info")
	}
	si := bs.StreamInfo()
	return si.State.LastSeq, bucketIdentity(si), nil
}

// BucketID returns the bucket's identity: the creation time of the
// stream beneath it, which a bucket deleted and created again under the
// same name does not share, nor does another cluster's.
func (b *RuleBucket) BucketID(ctx context.Context) (string, error) {
	_, id, err := b.lastRevision(ctx)
	return id, err
}

func bucketIdentity(si *jetstream.StreamInfo) string {
	return si.Created.UTC().Format(time.RFC3339Nano)
}

// SaveRuleVersion keeps v at path, whole or not at all: written beside it,
// synced, then renamed over it.
func SaveRuleVersion(path string, v RuleVersion) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := writeSynced(path, data); err != nil {
		return fmt.Errorf("keep rule version: %w", err)
	}
	return nil
}

// writeSynced writes data to path, whole or not at all: written beside
// it, synced, then renamed over it, the rename synced too.
func writeSynced(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // the rename, durably
		d.Sync()
		d.Close()
	}
	return nil
}

// maxKeptBytes bounds the kept copy: a version's JSON, its archive
// gzipped and in base64, is one NATS message (1 MiB by default).
const maxKeptBytes = 64 << 20

// ReadRuleVersion reads the version SaveRuleVersion kept at path.
func ReadRuleVersion(path string) (RuleVersion, error) {
	data, err := regular.ReadFile(path, maxKeptBytes)
	if err != nil {
		return RuleVersion{}, err
	}
	var v RuleVersion
	if err := json.Unmarshal(data, &v); err != nil {
		return RuleVersion{}, fmt.Errorf("read kept rule version %s: %w", path, err)
	}
	return v, nil
}

// RuleCachePath is where an edge keeps the version it serves from bucket,
// under dataDir.
func RuleCachePath(dataDir, bucket string) string {
	return filepath.Join(dataDir, "rules", path.Clean(bucket)+".json")
}

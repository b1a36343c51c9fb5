package report

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// A snapshot is what a Builder holds, written compactly so that a fold
// of the events stream can be stored (in NATS) and resumed where it
// stopped: the per-visitor state (exposures, goals, what they were last
// seen as), the anonymous ids that logged in, the experiments, variants
// and goals the events named, and the count of events. The tallies are
// not written: they follow from the visitors and are rebuilt on reading.
// The configuration (experiments and journey goals) is not written
// either: ReadBuilder takes it fresh, as New does.
//
// Layout (version 1): the magic "TLRB", a version byte, then uvarints,
// varints and length-prefixed strings; repeated names
// (experiments, variants, goals, segments, stages, ...) are written once
// and then referred to by number; goal values are in units of 1/10,000;
// a CRC-32 (Castagnoli) of all that
// precedes it ends the snapshot.
const (
	snapshotMagic   = "TLRB"
	snapshotVersion = 1
)

// ErrSnapshot is wrapped by ReadBuilder's errors about the snapshot
// itself (not the reader's): truncated, corrupt, or of an unknown version.
var ErrSnapshot = errors.New("bad readout snapshot")

// maxSnapshotString bounds one string in a snapshot: visitor ids, names.
const maxSnapshotString = 1 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteTo writes a snapshot of everything b holds (see ReadBuilder); it
// returns the bytes written. b is not changed. The snapshot is made in
// memory (about 60 bytes a visitor) and written at once.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	e := &snapEncoder{names: map[string]uint64{}}
	e.buf = append(make([]byte, 0, 64+60*len(b.visitors)), snapshotMagic...)
	e.buf = append(e.buf, snapshotVersion)
	e.uvarint(uint64(b.events))

	e.uvarint(uint64(len(b.goals)))
	for _, g := range b.goals {
		e.name(g)
	}
	e.uvarint(uint64(len(b.order)))
	for _, id := range b.order {
		e.name(id)
		e.nameList(b.seen[id])
	}
	e.uvarint(uint64(len(b.alias)))
	for anon, known := range b.alias {
		e.str(anon)
		e.str(known)
	}
	e.uvarint(uint64(len(b.visitors)))
	for id, v := range b.visitors {
		e.str(id)
		e.varint(v.lastSeen)
		e.nameList(v.segments)
		e.name(v.stage)
		e.name(v.persona)
		e.uvarint(uint64(len(v.exposures)))
		for _, x := range v.exposures {
			c := x.cell
			e.name(c.experiment)
			e.name(c.variant)
			e.varint(x.at)
			e.nameList(c.group.segments)
			e.name(c.group.device)
			e.name(c.group.stage)
			e.name(c.group.persona)
			e.name(c.group.country)
		}
		e.uvarint(uint64(len(v.goals)))
		for _, g := range v.goals {
			e.name(b.goals[g.goal])
			e.varint(g.at)
			e.varint(g.value)
		}
	}
	if e.err != nil {
		return 0, e.err
	}
	e.buf = binary.BigEndian.AppendUint32(e.buf, crc32.Checksum(e.buf, castagnoli))
	n, err := w.Write(e.buf)
	return int64(n), err
}

type snapEncoder struct {
	buf   []byte
	names map[string]uint64
	err   error
}

func (e *snapEncoder) uvarint(u uint64) { e.buf = binary.AppendUvarint(e.buf, u) }
func (e *snapEncoder) varint(i int64)   { e.buf = binary.AppendVarint(e.buf, i) }

// str writes a string once: its length, then its bytes.
func (e *snapEncoder) str(v string) {
	if len(v) > maxSnapshotString && e.err == nil {
		e.err = fmt.Errorf("write readout snapshot: a string of %d bytes (at most %d)", len(v), maxSnapshotString)
	}
	e.uvarint(uint64(len(v)))
	e.buf = append(e.buf, v...)
}

// name writes a string that recurs: 0 and the string the first time,
// then its number plus one.
func (e *snapEncoder) name(v string) {
	if i, ok := e.names[v]; ok {
		e.uvarint(i + 1)
		return
	}
	e.names[v] = uint64(len(e.names))
	e.uvarint(0)
	e.str(v)
}

func (e *snapEncoder) nameList(vs []string) {
	e.uvarint(uint64(len(vs)))
	for _, v := range vs {
		e.name(v)
	}
}

// ReadBuilder restores a Builder from a snapshot WriteTo wrote, with the
// configured experiments and journey goals as New takes them: adding the
// events that followed the snapshot to it gives the readout of them all.
// It reads r to its end: the snapshot and nothing else. A snapshot that
// is truncated, damaged (its checksum) or of another version is an error
// wrapping ErrSnapshot.
func ReadBuilder(r io.Reader, experiments []Experiment, goals []string) (*Builder, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read readout snapshot: %w", err)
	}
	b := New(experiments, goals)
	if err := decodeSnapshot(data, b); err != nil {
		return nil, fmt.Errorf("read readout snapshot: %w", err)
	}
	return b, nil
}

// errTruncated is what a snapshot cut short reads as.
var errTruncated = fmt.Errorf("%w: %w", ErrSnapshot, io.ErrUnexpectedEOF)

func decodeSnapshot(data []byte, b *Builder) error {
	head := len(snapshotMagic) + 1
	if len(data) < head+4 {
		return errTruncated
	}
	if string(data[:len(snapshotMagic)]) != snapshotMagic {
		return fmt.Errorf("%w: not a snapshot (magic %q)", ErrSnapshot, data[:len(snapshotMagic)])
	}
	if v := data[len(snapshotMagic)]; v != snapshotVersion {
		return fmt.Errorf("%w: version %d, this tailor reads version %d", ErrSnapshot, v, snapshotVersion)
	}
	body := data[:len(data)-4]
	if got, want := binary.BigEndian.Uint32(data[len(body):]), crc32.Checksum(body, castagnoli); got != want {
		return fmt.Errorf("%w: checksum %08x, want %08x (damaged or truncated)", ErrSnapshot, got, want)
	}
	d := &snapDecoder{b: b, buf: body[head:]}
	d.read()
	if d.err == nil && len(d.buf) > 0 {
		d.fail("%d bytes after its end", len(d.buf))
	}
	return d.err
}

// snapDecoder reads a snapshot's body; the first error sticks, and
// every read after it returns zeros.
type snapDecoder struct {
	b     *Builder
	buf   []byte
	names []string
	err   error
}

func (d *snapDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrSnapshot}, args...)...)
	}
	d.buf = nil
}

func (d *snapDecoder) uvarint() uint64 { return decodeVarint(d, binary.Uvarint) }

func (d *snapDecoder) varint() int64 { return decodeVarint(d, binary.Varint) }

// decodeVarint reads one varint with read (binary.Uvarint or
// binary.Varint); one that does not read ends the decoding.
func decodeVarint[T uint64 | int64](d *snapDecoder, read func([]byte) (T, int)) T {
	v, n := read(d.buf)
	if n <= 0 {
		if d.err == nil {
			d.err = errTruncated
		}
		d.buf = nil
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads a count of items, each at least one byte long: a corrupt
// count is an error, not a huge allocation.
func (d *snapDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail("a count of %d in %d bytes", n, len(d.buf))
		return 0
	}
	return int(n)
}

func (d *snapDecoder) str() string {
	n := d.uvarint()
	if n > maxSnapshotString || n > uint64(len(d.buf)) {
		d.fail("a string of %d bytes", n)
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

func (d *snapDecoder) name() string {
	i := d.uvarint()
	if i == 0 {
		v := d.b.str(d.str())
		if d.err == nil {
			d.names = append(d.names, v)
		}
		return v
	}
	if i > uint64(len(d.names)) {
		d.fail("name %d of %d", i, len(d.names))
		return ""
	}
	return d.names[i-1]
}

func (d *snapDecoder) nameList() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.name()
	}
	return out
}

func (d *snapDecoder) read() {
	b := d.b
	if b.events = int64(d.uvarint()); b.events < 0 {
		d.fail("%d events", uint64(b.events))
	}
	for range d.count() {
		b.goal(d.name())
	}
	for range d.count() {
		id, variants := d.name(), d.nameList()
		if _, dup := b.seen[id]; dup {
			d.fail("experiment %q twice", id)
			return
		}
		b.order = append(b.order, id)
		b.seen[id] = variants
	}
	for range d.count() {
		anon, known := d.str(), d.str()
		b.alias[anon] = known
	}
	for range d.count() {
		if d.err != nil {
			return
		}
		id := d.str()
		v := &visitor{lastSeen: d.varint(), segments: d.nameList(), stage: d.name(), persona: d.name()}
		if n := d.count(); n > 0 {
			v.exposures = make([]exposure, 0, n)
			for range n {
				experiment, variant, at := d.name(), d.name(), d.varint()
				g := group{segments: d.nameList(), device: d.name(), stage: d.name(), persona: d.name(), country: d.name()}
				if d.err != nil {
					return
				}
				if slices.ContainsFunc(v.exposures, func(x exposure) bool { return x.cell.experiment == experiment }) {
					d.fail("two exposures of a visitor to %q", experiment)
					return
				}
				v.exposures = append(v.exposures, exposure{b.cellFor(experiment, variant, g), at})
			}
		}
		n := d.count()
		if n > maxGoalsPerVisitor {
			d.fail("%d goals for one visitor", n)
			return
		}
		if n > 0 {
			v.goals = make([]goalHit, 0, n)
			for range n {
				h := goalHit{goal: b.goal(d.name()), at: d.varint(), value: d.varint()}
				if h.value > maxValue || h.value < -maxValue {
					d.fail("a goal value of %d units", h.value)
					return
				}
				v.goals = append(v.goals, h)
			}
		}
		if d.err != nil {
			return
		}
		if _, dup := b.visitors[id]; dup {
			d.fail("visitor twice")
			return
		}
		b.visitors[id] = v
		b.size(v, 1)
		for i := range v.exposures {
			b.count(v, &v.exposures[i], 1)
		}
	}
}

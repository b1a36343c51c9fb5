package report

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
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
// returns the bytes written. b is not changed.
func (b *Builder) WriteTo(w io.Writer) (int64, error) {
	sw := &snapWriter{w: bufio.NewWriterSize(w, 64<<10), crc: crc32.New(castagnoli), names: map[string]uint64{}}
	sw.raw([]byte(snapshotMagic))
	sw.raw([]byte{snapshotVersion})
	sw.uvarint(uint64(b.events))

	sw.uvarint(uint64(len(b.goals)))
	for _, g := range b.goals {
		sw.name(g)
	}
	sw.uvarint(uint64(len(b.order)))
	for _, id := range b.order {
		sw.name(id)
		sw.names_(b.seen[id])
	}
	sw.uvarint(uint64(len(b.alias)))
	for anon, known := range b.alias {
		sw.str(anon)
		sw.str(known)
	}
	sw.uvarint(uint64(len(b.visitors)))
	for id, v := range b.visitors {
		sw.str(id)
		sw.varint(v.lastSeen)
		sw.names_(v.segments)
		sw.name(v.stage)
		sw.name(v.persona)
		sw.uvarint(uint64(len(v.exposures)))
		for _, x := range v.exposures {
			c := x.cell
			sw.name(c.experiment)
			sw.name(c.variant)
			sw.varint(x.at)
			sw.names_(c.group.segments)
			sw.name(c.group.device)
			sw.name(c.group.stage)
			sw.name(c.group.persona)
			sw.name(c.group.country)
		}
		sw.uvarint(uint64(len(v.goals)))
		for _, g := range v.goals {
			sw.name(b.goals[g.goal])
			sw.varint(g.at)
			sw.varint(g.value)
		}
	}
	if sw.err == nil {
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], sw.crc.Sum32())
		_, sw.err = sw.w.Write(sum[:])
		sw.n += 4
	}
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
	return sw.n, sw.err
}

type snapWriter struct {
	w     *bufio.Writer
	crc   hash.Hash32
	n     int64
	err   error
	buf   [binary.MaxVarintLen64]byte
	names map[string]uint64
}

func (s *snapWriter) raw(p []byte) {
	if s.err != nil {
		return
	}
	s.crc.Write(p)
	var n int
	n, s.err = s.w.Write(p)
	s.n += int64(n)
}

func (s *snapWriter) uvarint(u uint64) { s.raw(binary.AppendUvarint(s.buf[:0], u)) }
func (s *snapWriter) varint(i int64)   { s.raw(binary.AppendVarint(s.buf[:0], i)) }

// str writes a string once: its length, then its bytes.
func (s *snapWriter) str(v string) {
	if len(v) > maxSnapshotString && s.err == nil {
		s.err = fmt.Errorf("write readout snapshot: a string of %d bytes (at most %d)", len(v), maxSnapshotString)
	}
	s.uvarint(uint64(len(v)))
	if s.err == nil {
		s.crc.Write([]byte(v))
		var n int
		n, s.err = s.w.WriteString(v)
		s.n += int64(n)
	}
}

// name writes a string that recurs: 0 and the string the first time,
// then its number plus one.
func (s *snapWriter) name(v string) {
	if i, ok := s.names[v]; ok {
		s.uvarint(i + 1)
		return
	}
	s.names[v] = uint64(len(s.names))
	s.uvarint(0)
	s.str(v)
}

func (s *snapWriter) names_(vs []string) {
	s.uvarint(uint64(len(vs)))
	for _, v := range vs {
		s.name(v)
	}
}

// ReadBuilder restores a Builder from a snapshot WriteTo wrote, with the
// configured experiments and journey goals as New takes them: adding the
// events that followed the snapshot to it gives the readout of them all.
// It reads r to the snapshot's end, no further than its checksum.
func ReadBuilder(r io.Reader, experiments []Experiment, goals []string) (*Builder, error) {
	b := New(experiments, goals)
	sr := &snapReader{b: b, r: bufio.NewReaderSize(r, 64<<10), crc: crc32.New(castagnoli)}
	if err := sr.read(b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read readout snapshot: %w", err)
	}
	return b, nil
}

type snapReader struct {
	b     *Builder
	r     *bufio.Reader
	crc   hash.Hash32
	names []string
	buf   []byte
}

// maxSnapshotCount bounds any count in a snapshot before it is used to
// size anything: a corrupt count is an error, not a huge allocation.
const maxSnapshotCount = 1 << 40

func (s *snapReader) read(b *Builder) error {
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(s.r, head); err != nil {
		return err
	}
	s.crc.Write(head)
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return fmt.Errorf("%w: not a snapshot (magic %q)", ErrSnapshot, head[:len(snapshotMagic)])
	}
	if v := head[len(snapshotMagic)]; v != snapshotVersion {
		return fmt.Errorf("%w: version %d, this tailor reads version %d", ErrSnapshot, v, snapshotVersion)
	}
	events, err := s.uvarint()
	if err != nil {
		return err
	}
	b.events = int64(events)

	n, err := s.count()
	if err != nil {
		return err
	}
	for range n {
		g, err := s.name()
		if err != nil {
			return err
		}
		b.goal(g)
	}
	if n, err = s.count(); err != nil {
		return err
	}
	for range n {
		id, err := s.name()
		if err != nil {
			return err
		}
		variants, err := s.nameList()
		if err != nil {
			return err
		}
		if _, dup := b.seen[id]; dup {
			return fmt.Errorf("%w: experiment %q twice", ErrSnapshot, id)
		}
		b.order = append(b.order, id)
		b.seen[id] = variants
	}
	if n, err = s.count(); err != nil {
		return err
	}
	for range n {
		anon, err := s.str()
		if err != nil {
			return err
		}
		known, err := s.str()
		if err != nil {
			return err
		}
		b.alias[anon] = known
	}
	if n, err = s.count(); err != nil {
		return err
	}
	for range n {
		id, err := s.str()
		if err != nil {
			return err
		}
		v := &visitor{}
		if v.lastSeen, err = s.varint(); err != nil {
			return err
		}
		if v.segments, err = s.nameList(); err != nil {
			return err
		}
		if v.stage, err = s.name(); err != nil {
			return err
		}
		if v.persona, err = s.name(); err != nil {
			return err
		}
		nx, err := s.count()
		if err != nil {
			return err
		}
		for range nx {
			var experiment, variant string
			var g group
			var at int64
			if experiment, err = s.name(); err != nil {
				return err
			}
			if variant, err = s.name(); err != nil {
				return err
			}
			if at, err = s.varint(); err != nil {
				return err
			}
			if g.segments, err = s.nameList(); err != nil {
				return err
			}
			for _, p := range []*string{&g.device, &g.stage, &g.persona, &g.country} {
				if *p, err = s.name(); err != nil {
					return err
				}
			}
			if slices.ContainsFunc(v.exposures, func(x exposure) bool { return x.cell.experiment == experiment }) {
				return fmt.Errorf("%w: two exposures of a visitor to %q", ErrSnapshot, experiment)
			}
			v.exposures = append(v.exposures, exposure{b.cellFor(experiment, variant, g), at})
		}
		ng, err := s.count()
		if err != nil {
			return err
		}
		if ng > maxGoalsPerVisitor {
			return fmt.Errorf("%w: %d goals for one visitor", ErrSnapshot, ng)
		}
		for range ng {
			var h goalHit
			name, err := s.name()
			if err != nil {
				return err
			}
			h.goal = b.goal(name)
			if h.at, err = s.varint(); err != nil {
				return err
			}
			if h.value, err = s.varint(); err != nil {
				return err
			}
			if h.value > maxValue || h.value < -maxValue {
				return fmt.Errorf("%w: a goal value of %d units", ErrSnapshot, h.value)
			}
			v.goals = append(v.goals, h)
		}
		if _, dup := b.visitors[id]; dup {
			return fmt.Errorf("%w: visitor twice", ErrSnapshot)
		}
		b.visitors[id] = v
		b.size(v, 1)
		for i := range v.exposures {
			b.count(v, &v.exposures[i], 1)
		}
	}
	want := s.crc.Sum32()
	var sum [4]byte
	if _, err := io.ReadFull(s.r, sum[:]); err != nil {
		return err
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("%w: checksum %08x, want %08x", ErrSnapshot, got, want)
	}
	return nil
}

// byteReader feeds the checksum with each byte the varint readers take.
type byteReader struct{ s *snapReader }

func (br byteReader) ReadByte() (byte, error) {
	c, err := br.s.r.ReadByte()
	if err == nil {
		br.s.crc.Write([]byte{c})
	}
	return c, err
}

func (s *snapReader) uvarint() (uint64, error) {
	u, err := binary.ReadUvarint(byteReader{s})
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	return u, err
}

func (s *snapReader) varint() (int64, error) {
	i, err := binary.ReadVarint(byteReader{s})
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	return i, err
}

func (s *snapReader) count() (uint64, error) {
	n, err := s.uvarint()
	if err == nil && n > maxSnapshotCount {
		err = fmt.Errorf("%w: count %d", ErrSnapshot, n)
	}
	return n, err
}

func (s *snapReader) str() (string, error) {
	n, err := s.uvarint()
	if err != nil {
		return "", err
	}
	if n > maxSnapshotString {
		return "", fmt.Errorf("%w: a string of %d bytes", ErrSnapshot, n)
	}
	if cap(s.buf) < int(n) {
		s.buf = make([]byte, n)
	}
	p := s.buf[:n]
	if _, err := io.ReadFull(s.r, p); err != nil {
		return "", err
	}
	s.crc.Write(p)
	return string(p), nil
}

func (s *snapReader) name() (string, error) {
	i, err := s.uvarint()
	if err != nil {
		return "", err
	}
	if i == 0 {
		v, err := s.str()
		if err != nil {
			return "", err
		}
		v = s.b.str(v)
		s.names = append(s.names, v)
		return v, nil
	}
	if i > uint64(len(s.names)) {
		return "", fmt.Errorf("%w: name %d of %d", ErrSnapshot, i, len(s.names))
	}
	return s.names[i-1], nil
}

func (s *snapReader) nameList() ([]string, error) {
	n, err := s.count()
	if err != nil || n == 0 {
		return nil, err
	}
	var out []string
	for range n {
		v, err := s.name()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

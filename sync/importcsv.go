package sync

// The CSV side of Import: the header's columns and the profile document
// each record becomes.

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// readCSV turns each record after the header into a profile document.
func readCSV(cr *csv.Reader, cols []csvColumn, skipped int64, bt *batcher) error {
	cr.FieldsPerRecord = len(cols)
	var doc []byte
	line := 1 // of the header, then of the last record read
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe):
			line = pe.StartLine
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				err = fmt.Errorf("%d columns, want %d as in the header", len(rec), len(cols))
			} else {
				err = pe.Err
			}
			doc = doc[:0]
		case err != nil:
			return &InputError{Line: line + 1, Err: fmt.Errorf("read: %w", err)}
		default:
			line, _ = cr.FieldPos(0)
			doc, err = appendCSVProfile(doc[:0], cols, rec)
			if err == nil && len(doc) > MaxImportLine {
				err = fmt.Errorf("record is longer than %d bytes", MaxImportLine)
			}
			if err != nil {
				doc = doc[:0]
			}
		}
		bt.consumed = skipped + cr.InputOffset()
		if !bt.add(line, doc, err) {
			return nil
		}
	}
}

// A csvColumn is what a CSV header cell names.
type csvColumn struct {
	kind csvKind
	name string // the trait or score name; the JSON name otherwise
}

type csvKind uint8

const (
	colID csvKind = iota
	colSegments
	colStage
	colUpdatedAt
	colTrait
	colScore
)

// csvColumnsHelp lists the columns a CSV header may name.
const csvColumnsHelp = "id, segments, stage, updated_at, traits.<name>, scores.<name>"

// readCSVHeader reads the header row: id (required), segments (separated
// by ';'), stage, updated_at (RFC 3339), traits.<name> (a string) and
// scores.<name> (a number), each at most once, in any order. It returns
// nil columns for an empty input.
func readCSVHeader(cr *csv.Reader) ([]csvColumn, error) {
	rec, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, &InputError{Line: pe.StartLine, Err: fmt.Errorf("csv header: %w", pe.Err)}
		}
		return nil, &InputError{Line: 1, Err: fmt.Errorf("read: %w", err)}
	}
	line, _ := cr.FieldPos(0)
	cols, problems := parseCSVHeader(rec)
	if len(problems) > 0 {
		return nil, &InputError{Line: line, Err: fmt.Errorf("csv header: %s", strings.Join(problems, "; "))}
	}
	return cols, nil
}

// parseCSVHeader maps header cells to columns, listing every problem.
func parseCSVHeader(rec []string) ([]csvColumn, []string) {
	cols := make([]csvColumn, len(rec))
	seen := make(map[string]bool, len(rec))
	var unknown, dup, problems []string
	hasID := false
	for i, cell := range rec {
		name := strings.TrimSpace(cell)
		var c csvColumn
		switch {
		case name == "id":
			c, hasID = csvColumn{kind: colID, name: name}, true
		case name == "segments":
			c = csvColumn{kind: colSegments, name: name}
		case name == "stage":
			c = csvColumn{kind: colStage, name: name}
		case name == "updated_at":
			c = csvColumn{kind: colUpdatedAt, name: name}
		case strings.HasPrefix(name, "traits.") && len(name) > len("traits."):
			c = csvColumn{kind: colTrait, name: name[len("traits."):]}
		case strings.HasPrefix(name, "scores.") && len(name) > len("scores."):
			c = csvColumn{kind: colScore, name: name[len("scores."):]}
		default:
			unknown = append(unknown, strconv.Quote(cell))
			continue
		}
		if seen[name] {
			dup = append(dup, strconv.Quote(name))
		}
		seen[name] = true
		cols[i] = c
	}
	if len(unknown) == 1 {
		problems = append(problems, fmt.Sprintf("unknown column %s (want %s)", unknown[0], csvColumnsHelp))
	} else if len(unknown) > 1 {
		problems = append(problems, fmt.Sprintf("unknown columns %s (want %s)", strings.Join(unknown, ", "), csvColumnsHelp))
	}
	if len(dup) > 0 {
		problems = append(problems, "columns named twice: "+strings.Join(dup, ", "))
	}
	if !hasID {
		problems = append(problems, `no "id" column`)
	}
	return cols, problems
}

// appendCSVProfile appends the profile document of a CSV record to b: the
// fields in the order of the JSON schema, empty cells left out.
func appendCSVProfile(b []byte, cols []csvColumn, rec []string) ([]byte, error) {
	for i, cell := range rec {
		if !utf8.ValidString(cell) {
			return b, fmt.Errorf("column %s: not valid UTF-8", cols[i].label())
		}
	}
	b = append(b, '{')
	for i, c := range cols {
		if c.kind == colID {
			b = append(b, `"id":`...)
			b = appendJSONString(b, rec[i])
		}
	}
	for i, c := range cols {
		if c.kind != colSegments || rec[i] == "" {
			continue
		}
		b = append(b, `,"segments":[`...)
		for j, seg := range strings.Split(rec[i], ";") {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, strings.TrimSpace(seg))
		}
		b = append(b, ']')
	}
	for i, c := range cols {
		if c.kind == colStage && rec[i] != "" {
			b = append(b, `,"stage":`...)
			b = appendJSONString(b, rec[i])
		}
	}
	b, _ = appendCSVObject(b, cols, rec, colTrait, `,"traits":{`, func(b []byte, _ csvColumn, cell string) ([]byte, error) {
		return appendJSONString(b, cell), nil
	})
	b, err := appendCSVObject(b, cols, rec, colScore, `,"scores":{`, func(b []byte, c csvColumn, cell string) ([]byte, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(cell), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return b, fmt.Errorf("column %s: %q is not a number", c.label(), cell)
		}
		return appendJSONNumber(b, f), nil
	})
	if err != nil {
		return b, err
	}
	for i, c := range cols {
		if c.kind != colUpdatedAt || rec[i] == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339, rec[i]); err != nil {
			return b, fmt.Errorf("column updated_at: %q is not an RFC 3339 time", rec[i])
		}
		b = append(b, `,"updated_at":`...)
		b = appendJSONString(b, rec[i])
	}
	return append(b, '}'), nil
}

// appendCSVObject appends the object that the non-empty cells of the
// columns of kind make, each a member named for its column: open (such
// as `,"traits":{`), the members with their values written by value, and
// the closing brace; nothing when every such cell is empty.
func appendCSVObject(b []byte, cols []csvColumn, rec []string, kind csvKind, open string, value func(b []byte, c csvColumn, cell string) ([]byte, error)) ([]byte, error) {
	opened := false
	for i, c := range cols {
		if c.kind != kind || rec[i] == "" {
			continue
		}
		if opened {
			b = append(b, ',')
		} else {
			b, opened = append(b, open...), true
		}
		b = appendJSONString(b, c.name)
		b = append(b, ':')
		var err error
		if b, err = value(b, c, rec[i]); err != nil {
			return b, err
		}
	}
	if opened {
		b = append(b, '}')
	}
	return b, nil
}

// label is the column's header cell.
func (c csvColumn) label() string {
	switch c.kind {
	case colTrait:
		return "traits." + c.name
	case colScore:
		return "scores." + c.name
	}
	return c.name
}

// appendJSONNumber appends f, finite, as encoding/json writes a float64.
func appendJSONNumber(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	return strconv.AppendFloat(b, f, format, -1, 64)
}

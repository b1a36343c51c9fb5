// Package regular reads the files an operator names in tailor's
// configuration and rule files (rule files, fragments, key files, JWKS
// documents, NATS credentials) so that a wrong path cannot hang or
// exhaust the process (issue 15): only a regular file is read, and only
// up to a limit. A named pipe would block the read, and with it a
// watcher that reloads, until something writes to it; /dev/zero would be
// read until memory runs out.
package regular

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

var (
	// ErrNotRegular: the file is a named pipe, a socket, a device or a
	// directory.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is larger than the limit.
	ErrTooLarge = errors.New("file too large")
)

// ReadFile reads the regular file name, of at most limit bytes. It
// never blocks on a named pipe or reads a device: the file is opened
// without waiting for a writer and its type is checked on the open file,
// so that a file swapped for a pipe after a Stat is refused all the same.
// Its size is checked again while reading, for a file that grows.
func ReadFile(name string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkRegular(fi, limit); err != nil {
		return nil, err
	}
	return readLimited(f, fi.Size(), limit)
}

// ReadFS is ReadFile for a file of fsys. It checks the file's type
// before opening it, which a file swapped meanwhile can escape.
func ReadFS(fsys fs.FS, name string, limit int64) ([]byte, error) {
	// Stat first: opening a named pipe of os.DirFS would block.
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(fi, limit); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, fi.Size(), limit)
}

func checkRegular(fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w (%s)", ErrNotRegular, Type(fi.Mode()))
	}
	if fi.Size() > limit {
		return tooLarge(fi.Size(), limit)
	}
	return nil
}

func readLimited(r io.Reader, size, limit int64) ([]byte, error) {
	b := make([]byte, 0, min(size, limit)+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, tooLarge(int64(len(b)), limit)
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

func tooLarge(size, limit int64) error {
	return fmt.Errorf("%w: %s, more than the %s allowed", ErrTooLarge, SizeText(size), SizeText(limit))
}

// SizeText writes n bytes as people read sizes: 512 bytes, 16 MiB, 20.3 MiB.
func SizeText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<10))) + " KiB"
	case n < 1<<30:
		return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<20))) + " MiB"
	}
	return trimZero(fmt.Sprintf("%.1f", float64(n)/(1<<30))) + " GiB"
}

func trimZero(s string) string {
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

// Type names a file mode that is not a regular file's: "a named pipe".
func Type(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.Type().String()
}

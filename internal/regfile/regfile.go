// Package regfile opens the files of a model folder as regular files only:
// a FIFO, socket or device put in place of a weights or config file is an
// error, never a read that blocks forever or never ends.
package regfile

import (
	"fmt"
	"io"
	"os"
)

// Open opens path for reading if it is a regular file (symbolic links are
// followed) and returns it with its FileInfo. It never blocks on a FIFO:
// the type is checked before opening, and the open itself does not wait
// for a writer where the platform allows it (O_NONBLOCK).
func Open(path string) (*os.File, os.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, notRegular(path, fi)
	}
	fh, err := os.OpenFile(path, os.O_RDONLY|nonBlock, 0)
	if err != nil {
		return nil, nil, err
	}
	// The path may have been replaced between the Stat and the open.
	fi, err = fh.Stat()
	if err != nil {
		fh.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		fh.Close()
		return nil, nil, notRegular(path, fi)
	}
	return fh, fi, nil
}

func notRegular(path string, fi os.FileInfo) error {
	kind := "not a plain file"
	switch t := fi.Mode().Type(); {
	case t&os.ModeDir != 0:
		kind = "a folder"
	case t&os.ModeNamedPipe != 0:
		kind = "a FIFO (named pipe)"
	case t&os.ModeSocket != 0:
		kind = "a socket"
	case t&os.ModeDevice != 0:
		kind = "a device"
	}
	return fmt.Errorf("%s: not a regular file: %s", path, kind)
}

// ReadFile reads the regular file at path, refusing one larger than limit
// bytes.
func ReadFile(path string, limit int64) ([]byte, error) {
	fh, fi, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the limit of %d", path, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than the limit of %d bytes (growing while read?)", path, limit)
	}
	return b, nil
}

package endpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrPathOutsideBase: a Recorder's path leads outside its base directory
// (WithBaseDir), by "../", an absolute path elsewhere or a symbolic link.
var ErrPathOutsideBase = errors.New("endpoint: path outside the base directory")

// recordFile is the file a Recorder writes, opened once, within its base
// directory if it has one.
type recordFile struct {
	*os.File
	path   string   // as reported: absolute when it can be
	root   *os.Root // the base directory, or nil
	rel    string   // the name within root
	closed bool
}

// createRecordFile creates (or truncates) the file at path. With a base
// directory, path is relative to it (or absolute within it) and is opened
// through an os.Root, which refuses every way out of the directory,
// symbolic links included, at the moment of opening; missing directories
// under it are created.
func createRecordFile(base, path string) (*recordFile, error) {
	const flags = os.O_RDWR | os.O_CREATE | os.O_TRUNC
	if base == "" {
		f, err := os.OpenFile(path, flags, 0o644)
		if err != nil {
			return nil, err
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			abs = path
		}
		return &recordFile{File: f, path: abs}, nil
	}
	absBase, err := filepath.Abs(base)
	if err != nil {
		return nil, err
	}
	rel := path
	if filepath.IsAbs(path) {
		if rel, err = filepath.Rel(absBase, path); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrPathOutsideBase, path, err)
		}
	}
	rel = filepath.Clean(rel)
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%w: %s is not within %s", ErrPathOutsideBase, path, base)
	}
	root, err := os.OpenRoot(absBase)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*recordFile, error) {
		root.Close()
		if escapes(err) {
			err = fmt.Errorf("%w: %s: %w", ErrPathOutsideBase, path, err)
		}
		return nil, err
	}
	if dir := filepath.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
	}
	f, err := root.OpenFile(rel, flags, 0o644)
	if err != nil {
		return fail(err)
	}
	return &recordFile{File: f, path: filepath.Join(absBase, rel), root: root, rel: rel}, nil
}

// escapes reports whether an os.Root refused a name for leading outside
// it. The os package has no exported error for it; its message is "path
// escapes from parent", at the end of a chain of *fs.PathError.
func escapes(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if _, ok := err.(*fs.PathError); !ok && err.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}

// close closes the file, and removes it when remove is true (nothing was
// recorded). It is idempotent.
func (f *recordFile) close(remove bool) error {
	if f.closed {
		return nil
	}
	f.closed = true
	err := f.File.Close()
	if remove {
		if f.root != nil {
			_ = f.root.Remove(f.rel)
		} else {
			_ = os.Remove(f.path)
		}
	}
	if f.root != nil {
		f.root.Close()
	}
	return err
}

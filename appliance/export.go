package appliance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names of an exported response folder.
const (
	ResponseFile = "response.json"
	RecordFile   = "record.json"
)

// DirSink writes response.json and record.json into a folder that must not
// exist yet (a fresh folder per ceremony, so nothing is overwritten). The
// record is written first and each file appears whole or not at all, so a
// response.json that exists is complete and its record is beside it.
type DirSink string

// Export writes the files, fsyncs them and the folder.
func (d DirSink) Export(_ context.Context, e Export) (string, error) {
	dir := string(d)
	if err := os.Mkdir(dir, 0o755); err != nil {
		switch {
		case errors.Is(err, fs.ErrExist):
			return "", fmt.Errorf("response folder %s already exists: give a new folder name (nothing is overwritten)", dir)
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("response folder %s: the folder %s that should hold it does not exist: give a new folder inside an existing one", dir, filepath.Dir(dir))
		}
		return "", fmt.Errorf("response folder: %w", err)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{RecordFile, e.Record}, {ResponseFile, e.Response}} {
		if err := writeSync(filepath.Join(dir, f.name), f.b); err != nil {
			return "", err
		}
	}
	df, err := os.Open(dir)
	if err != nil {
		return "", err
	}
	defer df.Close()
	if err := df.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", dir, err)
	}
	return dir, nil
}

// writeSync writes path through a temporary file renamed into place, so a
// crash leaves either the whole file or none under its name.
func writeSync(path string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		os.Remove(tmp)
		return fmt.Errorf("%s already exists", path)
	}
	return os.Rename(tmp, path)
}

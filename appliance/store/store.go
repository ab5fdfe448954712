// Package store owns the appliance's state directory and the two durable
// write primitives everything persistent is built on: whole-file atomic
// replacement and fsync'd appends.
//
// # Ownership
//
// A Dir owns one state directory. OpenDir takes an exclusive, non-blocking
// flock(2) on a lock file inside it, so two appliance processes never share
// state: the second one gets ErrLocked. The kernel releases the lock when the
// process dies, however it dies, so a crash never leaves the directory locked.
// The directory must not be writable by group or others.
//
// # Crash-consistency contract
//
// WriteFile(name, data) replaces name with data so that after a crash or power
// loss at any instant, name holds either its complete old content or its
// complete new content, never a mix, a prefix or an empty file:
//
//  1. a temporary file is created in the same directory (O_EXCL, mode 0600),
//  2. data is written to it and it is fsync'd,
//  3. it is renamed over name (atomic within one file system),
//  4. the directory is fsync'd, which makes the rename itself durable.
//
// WriteFile returns nil only after step 4, so content a caller was told is
// written survives power loss. If WriteFile returns an error the file may
// hold either version; callers that make promises from file content (the
// ledger, the audit log) must stop and re-read the directory before going on.
// Leftover temporary files from an interrupted write are removed by the next
// OpenDir, which holds the lock and is therefore their only possible owner.
//
// AppendFile(name, data) appends data and fsyncs the file (and the directory
// when the file is new). After a crash the file holds its old content followed
// by any prefix of data, possibly none of it, possibly all of it: appends are
// not atomic, and readers of appended files must recognise a torn tail.
//
// ReadFile reads at most a caller-named number of bytes and refuses larger
// files with ErrTooLarge, so a damaged or hostile state file cannot exhaust
// memory.
//
// These guarantees assume a local POSIX file system that honours fsync (ext4,
// xfs, btrfs); they do not hold on network file systems or on storage that
// acknowledges writes it has not made durable.
//
// # Thread safety
//
// A Dir may be used by several goroutines; writes to different names are
// independent and writes to one name must be serialised by the caller (the
// ledger and audit log each hold their own mutex).
package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// LockFileName is the file inside a state directory that OpenDir locks.
const LockFileName = ".lock"

// tempPrefix starts the name of every temporary file WriteFile creates.
const tempPrefix = ".tmp-"

// MaxNameLen caps the length of a state file name.
const MaxNameLen = 128

// ErrLocked is returned by OpenDir when another process holds the directory.
var ErrLocked = errors.New("state directory is in use by another appliance process")

// ErrTooLarge is returned by ReadFile when a file exceeds the caller's cap.
var ErrTooLarge = errors.New("state file exceeds its size cap")

// Op names one step of a durable write, for fault injection in tests.
type Op string

// The steps of WriteFile and AppendFile, in order.
const (
	OpCreate  Op = "create"   // temporary file created (WriteFile) or file opened (AppendFile)
	OpWrite   Op = "write"    // data written, not yet fsync'd
	OpSync    Op = "sync"     // file fsync'd
	OpRename  Op = "rename"   // temporary file renamed over the target (WriteFile)
	OpSyncDir Op = "sync-dir" // directory fsync'd
)

// Dir is one locked state directory.
type Dir struct {
	path string
	lock *os.File

	mu   sync.Mutex
	hook func(op Op, name string) error
}

// OpenDir creates path (mode 0700) if it does not exist, refuses it if group
// or others may write to it, locks it, and removes temporary files left by an
// interrupted WriteFile. Close releases the lock.
func OpenDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("open state directory: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open state directory %s: %w", path, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open state directory %s: %w", abs, err)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, fmt.Errorf("open state directory %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open state directory %s: not a directory (a symlink or file is in the way)", abs)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("open state directory %s: writable by group or others (mode %04o): run chmod 700 on it", abs, perm)
	}
	lf, err := os.OpenFile(filepath.Join(abs, LockFileName), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state directory %s: lock file: %w", abs, err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readHolder(lf)
		lf.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("open state directory %s: %w%s: stop it before starting another", abs, ErrLocked, holder)
		}
		return nil, fmt.Errorf("open state directory %s: lock: %w", abs, err)
	}
	// Record who holds the lock, for the message another process shows.
	// This is informational only; the flock is what excludes.
	if err := lf.Truncate(0); err == nil {
		_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	d := &Dir{path: abs, lock: lf}
	if err := d.removeTemps(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func readHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

func (d *Dir) removeTemps() error {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("open state directory %s: %w", d.path, err)
	}
	removed := false
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(d.path, e.Name())); err != nil {
				return fmt.Errorf("open state directory %s: remove leftover %s: %w", d.path, e.Name(), err)
			}
			removed = true
		}
	}
	if removed {
		return syncDir(d.path)
	}
	return nil
}

// Path is the absolute path of the directory.
func (d *Dir) Path() string { return d.path }

// Close releases the lock. The Dir must not be used afterwards.
func (d *Dir) Close() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close() // closing the descriptor releases the flock
	d.lock = nil
	return err
}

// SetTestOnlyHook installs fn to be called before each step of every durable
// write; a non-nil return aborts the write at that step with that error.
// It exists for fault-injection tests and must never be called otherwise.
func (d *Dir) SetTestOnlyHook(fn func(op Op, name string) error) {
	d.mu.Lock()
	d.hook = fn
	d.mu.Unlock()
}

func (d *Dir) step(op Op, name string) error {
	d.mu.Lock()
	h := d.hook
	d.mu.Unlock()
	if h == nil {
		return nil
	}
	if err := h(op, name); err != nil {
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	return nil
}

// checkName accepts a plain file name inside the directory.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("state file name %q is not a file name", name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("state file name is %d bytes, above the cap of %d", len(name), MaxNameLen)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("state file name %q contains a path separator or NUL", name)
	case strings.HasPrefix(name, tempPrefix) || name == LockFileName:
		return fmt.Errorf("state file name %q is reserved", name)
	}
	return nil
}

// WriteFile atomically replaces name with data (see the package doc).
func (d *Dir) WriteFile(name string, data []byte) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := filepath.Join(d.path, tempPrefix+name+"-"+hex.EncodeToString(rnd[:]))
	if err := d.step(OpCreate, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: create temporary file: %w", name, err)
	}
	renamed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !renamed {
			os.Remove(tmp)
		}
	}()
	if err := d.step(OpWrite, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := d.step(OpSync, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", name, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("write %s: close: %w", name, cerr)
	}
	if err := d.step(OpRename, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(d.path, name)); err != nil {
		return fmt.Errorf("write %s: rename: %w", name, err)
	}
	renamed = true
	if err := d.step(OpSyncDir, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := syncDir(d.path); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// AppendFile appends data to name, creating it (mode 0600) if needed, and
// returns after the data — and, for a new file, its directory entry — are
// fsync'd. See the package doc for what a crash can leave behind.
func (d *Dir) AppendFile(name string, data []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := d.step(OpCreate, name); err != nil {
		return fmt.Errorf("append %s: %w", name, err)
	}
	p := filepath.Join(d.path, name)
	created := false
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		created = true
	}
	if err != nil {
		return fmt.Errorf("append %s: %w", name, err)
	}
	defer f.Close()
	if err := d.step(OpWrite, name); err != nil {
		return fmt.Errorf("append %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("append %s: %w", name, err)
	}
	if err := d.step(OpSync, name); err != nil {
		return fmt.Errorf("append %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("append %s: fsync: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("append %s: close: %w", name, err)
	}
	if created {
		if err := d.step(OpSyncDir, name); err != nil {
			return fmt.Errorf("append %s: %w", name, err)
		}
		if err := syncDir(d.path); err != nil {
			return fmt.Errorf("append %s: %w", name, err)
		}
	}
	return nil
}

// Truncate shortens name to size bytes and fsyncs it. It is how a reader
// that recognised a torn tail (see AppendFile) removes it.
func (d *Dir) Truncate(name string, size int64) error {
	if err := checkName(name); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("truncate %s: %w", name, err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("truncate %s: fsync: %w", name, err)
	}
	return f.Close()
}

// ReadFile reads name, refusing it with ErrTooLarge if it holds more than
// limit bytes. A missing file gives an error matching fs.ErrNotExist.
func (d *Dir) ReadFile(name string, limit int64) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if limit < 0 {
		return nil, fmt.Errorf("read %s: negative size cap", name)
	}
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", name)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("read %s: %d bytes: %w (cap %d bytes)", name, fi.Size(), ErrTooLarge, limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: %w (cap %d bytes)", name, ErrTooLarge, limit)
	}
	return b, nil
}

// Exists reports whether name exists in the directory.
func (d *Dir) Exists(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	_, err := os.Lstat(filepath.Join(d.path, name))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("stat %s: %w", name, err)
}

func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	return nil
}

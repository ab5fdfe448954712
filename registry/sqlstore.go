package registry

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx"
	_ "modernc.org/sqlite"             // pure-Go SQLite driver "sqlite"
)

// dialect holds what differs between the engines.
type dialect struct {
	name   string
	blob   string
	lockTx string // run first in a writer transaction ("" if BEGIN already locks)
	update string // row lock suffix for SELECT
	dollar bool   // placeholders $1.. instead of ?
}

var (
	sqliteDialect   = dialect{name: "sqlite", blob: "BLOB"}
	postgresDialect = dialect{name: "postgres", blob: "BYTEA", lockTx: "SELECT pg_advisory_xact_lock(727274)", update: " FOR UPDATE", dollar: true}
)

type sqlStore struct {
	db *sql.DB
	d  dialect
	// wmu makes the writers of one process take turns before they ask
	// the database for its writer lock (BEGIN IMMEDIATE, advisory lock).
	wmu sync.Mutex
	// meta caches RepoMetadata.
	meta metaCache
	// group collects the single-statement writes of SQLite (see exec).
	group struct {
		sync.Mutex
		pending []*groupStmt
		running bool
	}
}

// groupStmt is one write waiting for a group commit.
type groupStmt struct {
	query string
	args  []any
	n     int64 // rows affected
	err   error
	done  chan struct{}
}

// maxGroup caps the statements one group commit holds.
const maxGroup = 256

// exec runs one write statement and returns the rows it affected, once
// it is committed. SQLite commits one transaction at a time, each with
// an fsync of its log, so concurrent writes are committed together (group
// commit): while one commit is under way the next statements queue, and
// the next commit takes them all, each in its own savepoint, so that one
// failing statement (a duplicate version) fails alone. Every caller still
// returns only after its statement is durable. PostgreSQL flushes the log
// of concurrent commits together itself: there each statement commits on
// its own.
func (s *sqlStore) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if s.d.dollar {
		res, err := s.db.ExecContext(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	st := &groupStmt{query: query, args: args, done: make(chan struct{})}
	g := &s.group
	g.Lock()
	g.pending = append(g.pending, st)
	lead := !g.running
	g.running = true
	g.Unlock()
	if lead {
		go s.commitGroups()
	}
	<-st.done
	return st.n, st.err
}

// commitGroups commits queued statements until none are left.
func (s *sqlStore) commitGroups() {
	g := &s.group
	for {
		g.Lock()
		batch := g.pending
		if len(batch) > maxGroup {
			batch = batch[:maxGroup]
		}
		g.pending = g.pending[len(batch):]
		if len(batch) == 0 {
			g.running = false
			g.Unlock()
			return
		}
		g.Unlock()
		s.commitGroup(batch)
	}
}

func (s *sqlStore) commitGroup(batch []*groupStmt) {
	ctx := context.Background()
	fail := func(err error) {
		for _, st := range batch {
			if st.err == nil {
				st.err, st.n = err, 0
			}
		}
	}
	defer func() {
		for _, st := range batch {
			close(st.done)
		}
	}()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	defer tx.Rollback()
	for _, st := range batch {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
			fail(err)
			return
		}
		res, err := tx.ExecContext(ctx, st.query, st.args...)
		if err != nil {
			st.err = err
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO w`); err != nil {
				fail(err)
				return
			}
		} else {
			st.n, _ = res.RowsAffected()
		}
		if _, err := tx.ExecContext(ctx, `RELEASE w`); err != nil {
			fail(err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(err)
	}
}

// OpenSQLite opens (creating if needed) a SQLite store: write-ahead log,
// full fsync on commit, writers serialised by BEGIN IMMEDIATE.
func OpenSQLite(ctx context.Context, path string) (Store, error) {
	if path == "" {
		return nil, errors.New("sqlite store: empty path (use sqlite:/var/lib/airlock/gate.db)")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	dsn := "file:" + path + "?_txlock=immediate&_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	return newSQLStore(ctx, db, sqliteDialect)
}

// OpenPostgres opens a PostgreSQL store through pgx. Several gates may
// share the database: stage transitions take row locks and every writer of
// the repository holds one transaction-scoped advisory lock, so snapshot
// and timestamp versions never fork.
func OpenPostgres(ctx context.Context, url string) (Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres store %s: %w", redactURL(url), err)
	}
	db.SetMaxOpenConns(16)
	return newSQLStore(ctx, db, postgresDialect)
}

func newSQLStore(ctx context.Context, db *sql.DB, d dialect) (*sqlStore, error) {
	s := &sqlStore{db: db, d: d}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s store: %w", d.name, err)
	}
	schema := []string{
		`CREATE TABLE IF NOT EXISTS repo_files (path TEXT PRIMARY KEY, data ` + d.blob + ` NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS stages (
			id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL, tag TEXT NOT NULL,
			target TEXT NOT NULL, role TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
			actor TEXT NOT NULL, shasum TEXT NOT NULL, integrity TEXT NOT NULL, predicate TEXT NOT NULL,
			signature TEXT NOT NULL, created BIGINT NOT NULL, updated BIGINT NOT NULL,
			document ` + d.blob + ` NOT NULL, tarball ` + d.blob + ` NOT NULL, provenance ` + d.blob + `,
			auth TEXT NOT NULL, request ` + d.blob + `)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS stages_live ON stages (name, version) WHERE state <> 'rejected'`,
		`CREATE INDEX IF NOT EXISTS stages_state ON stages (state, created)`,
		`CREATE TABLE IF NOT EXISTS trusted (key TEXT PRIMARY KEY, data ` + d.blob + ` NOT NULL)`,
	}
	// Columns added after the first schema: the approved role metadata
	// waiting for the writer, and whether the repository holds it.
	added := []struct{ name, def string }{{"signed", d.blob}, {"written", "INTEGER NOT NULL DEFAULT 0"}}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range schema {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		for _, c := range added {
			q := `ALTER TABLE stages ADD COLUMN IF NOT EXISTS ` + c.name + ` ` + c.def
			if !d.dollar {
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('stages') WHERE name = ?`, c.name).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					continue
				}
				q = `ALTER TABLE stages ADD COLUMN ` + c.name + ` ` + c.def
			}
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s store: creating tables: %w", d.name, err)
	}
	return s, nil
}

func (s *sqlStore) Close() error { return s.db.Close() }

// q rewrites ? placeholders for PostgreSQL.
func (s *sqlStore) q(query string) string {
	if !s.d.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// tx runs fn in a writer transaction holding the repository lock.
func (s *sqlStore) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.d.lockTx != "" {
		if _, err := tx.ExecContext(ctx, s.d.lockTx); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *sqlStore) ImportRepo(ctx context.Context, files map[string][]byte) (bool, error) {
	imported := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM repo_files`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		for p, b := range files {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO repo_files (path, data) VALUES (?, ?)`), p, b); err != nil {
				return err
			}
		}
		imported = true
		return nil
	})
	return imported, err
}

func (s *sqlStore) RepoFile(ctx context.Context, path string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, s.q(`SELECT data FROM repo_files WHERE path = ?`), path).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	return b, err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// RepoMetadata returns the newest metadata; the map is shared between
// callers and must not be modified.
func (s *sqlStore) RepoMetadata(ctx context.Context) (map[string][]byte, error) {
	return s.repoMetadata(ctx, s.db)
}

// metaCache holds the repository metadata a store read last. Every write
// of the repository (WriteQueued, Approve) signs a new timestamp.json with
// a higher version, so the same timestamp.json bytes mean the same
// metadata: a read whose timestamp matches returns the cached map without
// reading anything else. Versioned metadata paths (N.ROLE.json,
// N.root.json) are written once and never rewritten (consistent
// snapshots), so after a write only the new files are read.
type metaCache struct {
	mu    sync.Mutex
	stamp []byte            // timestamp.json files was read after
	files map[string][]byte // the newest metadata, shared read-only
}

// versioned reports whether a metadata path names one version of a role
// (N.ROLE.json), which is never rewritten.
func versioned(p string) bool {
	name, ok := strings.CutPrefix(p, "metadata/")
	if !ok {
		return false
	}
	num, _, ok := strings.Cut(name, ".")
	_, err := strconv.ParseInt(num, 10, 64)
	return ok && err == nil
}

func (s *sqlStore) repoMetadata(ctx context.Context, q querier) (map[string][]byte, error) {
	// The timestamp is read first: files read after it are as new or
	// newer, and a newer repository has a newer timestamp, so a map
	// filed under an older stamp is only ever read again too often.
	var stamp []byte
	err := q.QueryRowContext(ctx, s.q(`SELECT data FROM repo_files WHERE path = ?`), "metadata/timestamp.json").Scan(&stamp)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	s.meta.mu.Lock()
	cached, prev := s.meta.files, s.meta.files
	if stamp == nil || !bytes.Equal(stamp, s.meta.stamp) {
		cached = nil
	}
	s.meta.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	rows, err := q.QueryContext(ctx, s.q(`SELECT path FROM repo_files WHERE path LIKE 'metadata/%' OR path = ?`), repoConfigFile)
	if err != nil {
		return nil, err
	}
	var paths []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		paths = append(paths, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errors.New("the store holds no TUF repository yet (start the gate with --repo)")
	}
	out := map[string][]byte{}
	for _, p := range latestMetadata(paths) {
		if b, ok := prev[p]; ok && versioned(p) {
			out[p] = b
			continue
		}
		var b []byte
		if err := q.QueryRowContext(ctx, s.q(`SELECT data FROM repo_files WHERE path = ?`), p).Scan(&b); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[p] = b
	}
	if stamp != nil {
		s.meta.mu.Lock()
		s.meta.stamp, s.meta.files = stamp, out
		s.meta.mu.Unlock()
	}
	return out, nil
}

const stageCols = `id, name, version, tag, target, role, state, reason, actor, shasum, integrity, predicate, signature, created, updated, written`

func scanStage(sc interface{ Scan(...any) error }) (*Stage, error) {
	var st Stage
	var created, updated, written int64
	err := sc.Scan(&st.ID, &st.Name, &st.Version, &st.Tag, &st.Target, &st.Role, &st.State, &st.Reason, &st.Actor,
		&st.Shasum, &st.Integrity, &st.Predicate, &st.Signature, &created, &updated, &written)
	if err != nil {
		return nil, err
	}
	st.Written = written != 0
	st.Created, st.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &st, nil
}

func (s *sqlStore) PutStage(ctx context.Context, st *Stage, b *Blobs) error {
	now := time.Now().UTC()
	st.Created, st.Updated, st.State = now, now, StateStaged
	var prov any
	if b.Provenance != nil {
		prov = b.Provenance
	}
	_, err := s.exec(ctx, s.q(`INSERT INTO stages (`+stageCols+`, document, tarball, provenance, auth)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		st.ID, st.Name, st.Version, st.Tag, st.Target, st.Role, st.State, st.Reason, st.Actor, st.Shasum, st.Integrity,
		st.Predicate, st.Signature, now.UnixNano(), now.UnixNano(), 0, b.Document, b.Tarball, prov, b.Auth)
	if err != nil && isUniqueViolation(err) {
		return fmt.Errorf("%s@%s: %w", st.Name, st.Version, ErrDuplicate)
	}
	return err
}

func isUniqueViolation(err error) bool {
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "SQLSTATE 23505")
}

func (s *sqlStore) GetStage(ctx context.Context, id string) (*Stage, error) {
	st, err := scanStage(s.db.QueryRowContext(ctx, s.q(`SELECT `+stageCols+` FROM stages WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("stage %s: %w", id, ErrNotFound)
	}
	return st, err
}

func (s *sqlStore) getBlobs(ctx context.Context, q querier, id string, lock string) (*Blobs, error) {
	var b Blobs
	err := q.QueryRowContext(ctx, s.q(`SELECT document, tarball, provenance, auth, request FROM stages WHERE id = ?`+lock), id).
		Scan(&b.Document, &b.Tarball, &b.Provenance, &b.Auth, &b.Request)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("stage %s: %w", id, ErrNotFound)
	}
	return &b, err
}

func (s *sqlStore) GetBlobs(ctx context.Context, id string) (*Blobs, error) {
	return s.getBlobs(ctx, s.db, id, "")
}

func (s *sqlStore) ListStages(ctx context.Context, state, name string, offset, limit int) ([]Stage, int, error) {
	where, args := ` WHERE 1=1`, []any{}
	if state != "" {
		where += ` AND state = ?`
		args = append(args, state)
	}
	if name != "" {
		where += ` AND name = ?`
		args = append(args, name)
	}
	var total int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM stages`+where), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+stageCols+` FROM stages`+where+` ORDER BY created, id LIMIT ? OFFSET ?`),
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Stage
	for rows.Next() {
		st, err := scanStage(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *st)
	}
	return out, total, rows.Err()
}

func (s *sqlStore) StagesOf(ctx context.Context, name string) ([]Stage, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+stageCols+` FROM stages WHERE name = ? AND state <> 'rejected' ORDER BY created`), name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Stage
	for rows.Next() {
		st, err := scanStage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *st)
	}
	return out, rows.Err()
}

// transition updates a stage that is in state from, failing with the
// stage's actual state otherwise.
func (s *sqlStore) transition(ctx context.Context, id, from string, set string, args ...any) error {
	n, err := s.exec(ctx, s.q(`UPDATE stages SET `+set+`, updated = ? WHERE id = ? AND state = ?`),
		append(args, time.Now().UnixNano(), id, from)...)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	st, err := s.GetStage(ctx, id)
	if err != nil {
		return err
	}
	return fmt.Errorf("stage %s is %s, not %s", id, st.State, from)
}

func (s *sqlStore) SetRequest(ctx context.Context, id string, request []byte) error {
	return s.transition(ctx, id, StateStaged, `request = ?`, request)
}

func (s *sqlStore) Refuse(ctx context.Context, id, reason string) error {
	return s.transition(ctx, id, StateStaged, `reason = ?`, reason)
}

func (s *sqlStore) Reject(ctx context.Context, id, reason string) error {
	return s.transition(ctx, id, StateStaged, `state = 'rejected', reason = ?`, reason)
}

func (s *sqlStore) MarkPublished(ctx context.Context, id string) error {
	n, err := s.exec(ctx, s.q(`UPDATE stages SET state = 'published', reason = '', updated = ? WHERE id = ? AND state = 'approved' AND written = 1`),
		time.Now().UnixNano(), id)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	st, err := s.GetStage(ctx, id)
	if err != nil {
		return err
	}
	if st.State == StateApproved {
		return fmt.Errorf("stage %s is approved but not yet in the repository: it cannot be published", id)
	}
	return fmt.Errorf("stage %s is %s, not approved", id, st.State)
}

func (s *sqlStore) Approve(ctx context.Context, id string, check ApproveFunc) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		st, err := scanStage(tx.QueryRowContext(ctx, s.q(`SELECT `+stageCols+` FROM stages WHERE id = ?`+s.d.update), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("stage %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if st.State != StateStaged {
			return fmt.Errorf("stage %s is %s: %w", id, st.State, ErrNotStaged)
		}
		b, err := s.getBlobs(ctx, tx, id, "")
		if err != nil {
			return err
		}
		repo, err := s.repoMetadata(ctx, tx)
		if err != nil {
			return err
		}
		files, sig, err := check(st, b, repo)
		if err != nil {
			return err
		}
		for p, data := range files {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM repo_files WHERE path = ?`), p); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO repo_files (path, data) VALUES (?, ?)`), p, data); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE stages SET state = 'approved', written = 1, reason = '', signature = ?, updated = ? WHERE id = ?`),
			sig, time.Now().UnixNano(), id)
		return err
	})
}

func (s *sqlStore) Queue(ctx context.Context, id string, request []byte, a *Approval, signature string) error {
	var state string
	var stored []byte
	err := s.db.QueryRowContext(ctx, s.q(`SELECT state, request FROM stages WHERE id = ?`), id).Scan(&state, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("stage %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if state != StateStaged {
		return fmt.Errorf("stage %s is %s: %w", id, state, ErrNotStaged)
	}
	if !bytes.Equal(stored, request) {
		return fmt.Errorf("stage %s: a new bundle was made while the submission was verified: %w", id, ErrStale)
	}
	// The update re-checks both under the row's write lock: a bundle made
	// or a decision taken since the read above leaves the stage alone.
	n, err := s.exec(ctx, s.q(`UPDATE stages SET state = 'approved', written = 0, role = ?, signed = ?, reason = '', signature = ?, updated = ?
		WHERE id = ? AND state = 'staged' AND request = ?`), a.Role, a.Signed, signature, time.Now().UnixNano(), id, request)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("stage %s changed while the submission was verified: %w", id, ErrNotStaged)
	}
	return nil
}

func (s *sqlStore) WriteQueued(ctx context.Context, max int, write BatchFunc) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	n := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT `+stageCols+`, tarball, signed FROM stages
			WHERE state = 'approved' AND written = 0 ORDER BY created, id LIMIT ?`+s.d.update), max)
		if err != nil {
			return err
		}
		var stages []*Stage
		var items []Queued
		for rows.Next() {
			var tgz, signed []byte
			var st Stage
			var created, updated, written int64
			if err := rows.Scan(&st.ID, &st.Name, &st.Version, &st.Tag, &st.Target, &st.Role, &st.State, &st.Reason, &st.Actor,
				&st.Shasum, &st.Integrity, &st.Predicate, &st.Signature, &created, &updated, &written, &tgz, &signed); err != nil {
				rows.Close()
				return err
			}
			st.Created, st.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
			stages = append(stages, &st)
			items = append(items, Queued{Role: st.Role, Target: st.Target, Tarball: tgz, Signed: signed})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		repo, err := s.repoMetadata(ctx, tx)
		if err != nil {
			return err
		}
		files, refused, err := write(stages, items, repo)
		if err != nil {
			return err
		}
		if len(refused) != len(items) {
			return fmt.Errorf("writer answered for %d of %d approved stages", len(refused), len(items))
		}
		for p, data := range files {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM repo_files WHERE path = ?`), p); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO repo_files (path, data) VALUES (?, ?)`), p, data); err != nil {
				return err
			}
		}
		now := time.Now().UnixNano()
		for i, st := range stages {
			if refused[i] != nil {
				_, err = tx.ExecContext(ctx, s.q(`UPDATE stages SET state = 'staged', written = 0, signed = NULL, signature = '', reason = ?, updated = ? WHERE id = ?`),
					"submission refused: "+oneLine(refused[i].Error()), now, st.ID)
			} else {
				_, err = tx.ExecContext(ctx, s.q(`UPDATE stages SET written = 1, signed = NULL, updated = ? WHERE id = ?`), now, st.ID)
				n++
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

func (s *sqlStore) LoadTrusted(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, s.q(`SELECT data FROM trusted WHERE key = ?`), key).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("kept delegation %.12s: %w", key, ErrNotFound)
	}
	return b, err
}

func (s *sqlStore) SaveTrusted(ctx context.Context, key string, data []byte) error {
	_, err := s.exec(ctx, s.q(`INSERT INTO trusted (key, data) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`), key, data)
	return err
}

// ErrNotStaged means a stage already left the staged state.
var ErrNotStaged = errors.New("only a staged version can be approved")

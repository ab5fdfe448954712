// Package content is the content half of Airlock's review model: what changed
// inside a package between the previous release and this one, and which of
// those changes deserve a key holder's attention.
//
// It reads release artifacts — npm tarballs, tar, tar.gz, zip, Python wheels
// or a plain single file — into a Tree (paths, sizes, modes, SHA-256 hashes,
// and the text of text files), compares two Trees into a Diff (files added,
// removed and changed, with capped unified diffs of text files) and derives
// risk Signals: install scripts, new dependencies, executables and native
// addons, .pth files, minified or high-entropy blobs, links, special files,
// dangerous modes, confusable package names and invisible or control
// characters.
//
// Invariants:
//   - Every artifact is hostile. Readers stream, enforce the named caps in
//     Limits (entries, expanded bytes, single file, path length, path depth,
//     compression ratio) and refuse with an error that names the entry, or
//     record a Signal naming it; they never panic and never hold more than
//     the caps allow. Nothing is extracted to disk.
//   - Every string in a Tree, Diff or Signal that came from an artifact is
//     kept as the artifact's own bytes. Before showing one, render it with
//     Visible (names, single-line fields) or VisibleLine (diff lines): they
//     show control, bidi, zero-width and other invisible characters and
//     invalid UTF-8 as escapes, never interpreted.
//   - Output is plain data: the package imports no UI code and computes the
//     same Diff for the same inputs, whatever the number of CPUs.
//
// Trees and Diffs are immutable once returned and safe for concurrent reads.
package content

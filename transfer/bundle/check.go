package bundle

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// checkComponent validates one name inside a directory. full is the path
// used in error messages.
func checkComponent(full, name string) error {
	switch {
	case name == "":
		return refuse(full, RuleEmptyName, "empty path component")
	case name == "." || name == "..":
		return refuse(full, RuleTraversal, "path leaves the bundle")
	case strings.ContainsRune(name, '/'):
		return refuse(full, RuleTraversal, "name contains a slash: path leaves the bundle")
	case strings.ContainsRune(name, '\\'):
		return refuse(full, RuleBackslash, "name contains a backslash")
	case strings.ContainsRune(name, 0):
		return refuse(full, RuleBadChar, "name contains a NUL byte")
	case !utf8.ValidString(name):
		return refuse(full, RuleBadUTF8, "name is not valid UTF-8")
	}
	for _, r := range name {
		switch {
		case unicode.IsControl(r):
			return refuse(full, RuleBadChar, "name contains control character %U", r)
		case unicode.Is(unicode.Cf, r):
			return refuse(full, RuleBadChar, "name contains invisible formatting character %U", r)
		case r == utf8.RuneError:
			return refuse(full, RuleBadUTF8, "name contains the replacement character U+FFFD")
		}
	}
	if strings.TrimSpace(name) != name {
		return refuse(full, RuleBadChar, "name starts or ends with white space")
	}
	return nil
}

// splitPath validates a slash-separated path as found in a tar header and
// returns its components.
func splitPath(p string) ([]string, error) {
	if p == "" {
		return nil, refuse(p, RuleEmptyName, "empty name")
	}
	if strings.HasPrefix(p, "/") {
		return nil, refuse(p, RuleAbsolute, "absolute path")
	}
	if strings.ContainsRune(p, '\\') {
		// Checked on the whole path first so that "..\x" is named for what it is.
		return nil, refuse(p, RuleBackslash, "name contains a backslash")
	}
	if len(p) >= 2 && p[1] == ':' {
		return nil, refuse(p, RuleAbsolute, "absolute path (drive letter)")
	}
	parts := strings.Split(p, "/")
	for _, c := range parts {
		if err := checkComponent(p, c); err != nil {
			return nil, err
		}
	}
	return parts, nil
}

// foldKey maps a path to the key two lookalike names share: NFKC
// normalisation then case folding. Two entries with one key are refused.
func foldKey(p string) string {
	return strings.ToLower(strings.ToUpper(norm.NFKC.String(p)))
}

// entry is one checked entry of a bundle.
type entry struct {
	path string
	dir  bool
	size int64
}

// checker applies the layout and limits to entries in the order a source
// yields them.
type checker struct {
	lim    Limits
	layout Layout
	keys   map[string]bool // fold key -> is a directory
	// implicitDirs are directories created only as parents of a member: tar
	// sources may list a directory after its contents, once.
	implicitDirs map[string]bool
	entries      []entry
	total        int64
}

func newChecker(lim Limits, layout Layout) *checker {
	return &checker{lim: lim.withDefaults(), layout: layout.orDefault(), keys: map[string]bool{}, implicitDirs: map[string]bool{}}
}

// add checks one entry whose components have each passed checkComponent.
func (c *checker) add(parts []string, dir bool, size int64) error {
	p := strings.Join(parts, "/")
	if len(p) > c.lim.MaxPathLen {
		return refuse(p, RulePathLen, "path of %d bytes is over the %d-byte cap (Limits.MaxPathLen)", len(p), c.lim.MaxPathLen)
	}
	if len(parts) > c.lim.MaxDepth || (dir && len(parts) >= c.lim.MaxDepth) {
		return refuse(p, RuleDepth, "nested %d levels deep, over the cap of %d (Limits.MaxDepth)", len(parts), c.lim.MaxDepth)
	}
	top := parts[0]
	if len(parts) == 1 {
		if dir && !containsStr(c.layout.Dirs, top) {
			if c.layout.topFile(top) {
				return refuse(p, RuleWrongType, "must be a regular file, not a directory")
			}
			return refuse(p, RuleUnknownTop, "unknown top-level entry: a bundle holds only %s", c.allowedTop())
		}
		if !dir && !c.layout.topFile(top) {
			if containsStr(c.layout.Dirs, top) {
				return refuse(p, RuleWrongType, "must be a directory, not a file")
			}
			return refuse(p, RuleUnknownTop, "unknown top-level entry: a bundle holds only %s", c.allowedTop())
		}
	} else if !containsStr(c.layout.Dirs, top) {
		return refuse(p, RuleUnknownTop, "unknown top-level entry: a bundle holds only %s", c.allowedTop())
	}
	// Parents must be directories; create them implicitly.
	for i := 1; i < len(parts); i++ {
		pk := foldKey(strings.Join(parts[:i], "/"))
		isDir, seen := c.keys[pk]
		if seen && !isDir {
			return refuse(p, RuleWrongType, "parent %s is a file", displayName(strings.Join(parts[:i], "/")))
		}
		if !seen {
			if err := c.count(strings.Join(parts[:i], "/")); err != nil {
				return err
			}
			c.keys[pk] = true
			c.implicitDirs[pk] = true
			c.entries = append(c.entries, entry{path: strings.Join(parts[:i], "/"), dir: true})
		}
	}
	k := foldKey(p)
	if isDir, seen := c.keys[k]; seen {
		if dir && isDir && c.implicitDirs[k] {
			delete(c.implicitDirs, k)
			return nil
		}
		return refuse(p, RuleDuplicate, "duplicate entry (names equal after case folding and Unicode normalisation)")
	}
	if err := c.count(p); err != nil {
		return err
	}
	if !dir {
		if size < 0 {
			return refuse(p, RuleTar, "negative size")
		}
		if p == c.layout.Document && size > c.lim.MaxRequestBytes {
			return refuse(p, RuleRequestBytes, "%s is over the %s cap (Limits.MaxRequestBytes)", formatSize(size), formatSize(c.lim.MaxRequestBytes))
		}
		if size > c.lim.MaxFileBytes {
			return refuse(p, RuleFileBytes, "%s is over the %s single-file cap (Limits.MaxFileBytes)", formatSize(size), formatSize(c.lim.MaxFileBytes))
		}
		if size > c.lim.MaxTotalBytes-c.total {
			return refuse(p, RuleTotalBytes, "bundle grows past the %s total cap (Limits.MaxTotalBytes)", formatSize(c.lim.MaxTotalBytes))
		}
		c.total += size
	}
	c.keys[k] = dir
	c.entries = append(c.entries, entry{path: p, dir: dir, size: size})
	return nil
}

func (c *checker) count(p string) error {
	if len(c.entries) >= c.lim.MaxEntries {
		return refuse(p, RuleEntries, "more than %d entries (Limits.MaxEntries)", c.lim.MaxEntries)
	}
	return nil
}

// finish checks the required files are present.
func (c *checker) finish() error {
	req := append([]string{c.layout.Document}, c.layout.Required...)
	for _, name := range req {
		if isDir, ok := c.keys[foldKey(name)]; !ok || isDir {
			return refuse(name, RuleMissing, "missing: the bundle must hold %s", name)
		}
	}
	return nil
}

func (c *checker) allowedTop() string {
	var names []string
	names = append(names, c.layout.Document)
	names = append(names, c.layout.Required...)
	names = append(names, c.layout.Files...)
	for _, d := range c.layout.Dirs {
		names = append(names, d+"/")
	}
	return strings.Join(names, ", ")
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

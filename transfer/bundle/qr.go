package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// QRLayout is the part of a release bundle that travels as animated QR
// codes: request.json (which names every target with its length and
// hashes) and the Sigstore provenance bundles. Artifacts and the previous
// release stay behind; they go by USB when the content is to be reviewed.
var QRLayout = Layout{
	Document: RequestFile,
	Dirs:     []string{ProvenanceDir},
}

// MaxQRBytes caps the QR message a bundle is packed into: at the default
// fragment size and 5 frames a second this is about three minutes of
// scanning. A bundle whose request and provenance are larger must go by
// USB.
const MaxQRBytes = 512 << 10

// ErrQRTooLarge is returned when the QR subset of a bundle is over
// MaxQRBytes.
var ErrQRTooLarge = errors.New("too large for QR")

// WriteQR packs the QR subset of the bundle in src (request.json and
// provenance/, nothing else) into one deterministic uncompressed tar, the
// message `airlock qr show` animates. It applies the checks Import applies.
func WriteQR(src fs.FS) ([]byte, *Manifest, error) {
	var b bytes.Buffer
	m, err := WriteTar(&b, qrSubset{src}, Options{Layout: QRLayout})
	if err != nil {
		return nil, nil, err
	}
	if b.Len() > MaxQRBytes {
		return nil, nil, fmt.Errorf("bundle: request and provenance take %s packed, over the %s QR cap (MaxQRBytes): %w; carry the bundle by USB",
			formatSize(int64(b.Len())), formatSize(MaxQRBytes), ErrQRTooLarge)
	}
	return b.Bytes(), m, nil
}

// IsQRTar reports whether a QR message is a packed bundle (a tar written by
// WriteQR) rather than a bare request.json.
func IsQRTar(msg []byte) bool {
	return len(msg) >= 512 && bytes.Equal(msg[257:262], []byte("ustar"))
}

// ImportQR checks a packed QR message and copies it into workdir, like
// ImportTar with QRLayout: only request.json and provenance/ are accepted.
func ImportQR(msg []byte, workdir string, opts Options) (*Manifest, error) {
	if len(msg) > MaxQRBytes {
		return nil, fmt.Errorf("bundle: a QR message of %s is over the %s cap (MaxQRBytes): %w", formatSize(int64(len(msg))), formatSize(MaxQRBytes), ErrQRTooLarge)
	}
	opts.Layout = QRLayout
	return ImportTar(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(msg)), nil
	}, workdir, opts)
}

// qrSubset shows only the QR part of a bundle folder.
type qrSubset struct{ fsys fs.FS }

func inQR(name string) bool {
	return name == "." || name == RequestFile || name == ProvenanceDir || strings.HasPrefix(name, ProvenanceDir+"/")
}

func (q qrSubset) Open(name string) (fs.File, error) {
	if !inQR(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return q.fsys.Open(name)
}

func (q qrSubset) ReadDir(name string) ([]fs.DirEntry, error) {
	if !inQR(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	list, err := fs.ReadDir(q.fsys, name)
	if err != nil || name != "." {
		return list, err
	}
	var out []fs.DirEntry
	for _, e := range list {
		if inQR(e.Name()) {
			out = append(out, e)
		}
	}
	return out, nil
}

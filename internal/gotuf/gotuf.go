// Package gotuf fetches a target with go-tuf's own updater: an independent
// TUF client used to show that Airlock's repositories are standard TUF.
package gotuf

import (
	"fmt"
	"os"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// Fetch refreshes metadata from baseURL (serving metadata/ and targets/)
// starting from root and downloads target. Nothing is cached on disk beyond
// a temporary folder it removes.
func Fetch(baseURL string, root []byte, target string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "airlock-gotuf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg, err := config.New(baseURL+"/metadata", root)
	if err != nil {
		return nil, err
	}
	cfg.RemoteTargetsURL = baseURL + "/targets"
	cfg.LocalMetadataDir = dir
	cfg.LocalTargetsDir = dir
	cfg.PrefixTargetsWithHash = true
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("go-tuf: %w", err)
	}
	if err := up.Refresh(); err != nil {
		return nil, fmt.Errorf("go-tuf refresh: %w", err)
	}
	info, err := up.GetTargetInfo(target)
	if err != nil {
		return nil, fmt.Errorf("go-tuf target info: %w", err)
	}
	_, data, err := up.DownloadTarget(info, "", "")
	if err != nil {
		return nil, fmt.Errorf("go-tuf download: %w", err)
	}
	return data, nil
}

//go:build !cgo

package qr

import "image"

// Zbar is unavailable in this build.
type Zbar struct{}

// NewZbar fails in builds without cgo.
func NewZbar() (*Zbar, error) { return nil, ErrNoZbar }

// Close does nothing.
func (z *Zbar) Close() error { return nil }

// Decode fails in builds without cgo.
func (z *Zbar) Decode(image.Image) ([][]byte, error) { return nil, ErrNoZbar }

// ZbarAvailable reports whether this build can decode images.
const ZbarAvailable = false

//go:build !linux

package pivtest

import "os/exec"

func dieWithTest(*exec.Cmd) {}

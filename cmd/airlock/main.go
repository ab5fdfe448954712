// Command airlock is the online side of Airlock: it creates and maintains a
// TUF repository, builds release bundles for the offline appliance, combines
// the signature responses that come back, and verifies repositories the
// way a strict TUF client does.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"airlock.dev/airlock/internal/cli"
)

// Version is set at release build time with -ldflags "-X main.Version=...".
var Version = ""

const usage = `airlock: the online side of Airlock release signing

usage: airlock COMMAND [flags]

commands:
  init       create a TUF repository (root, targets, snapshot, timestamp)
  delegate   add, change or remove a delegated role
  root       build a root rotation bundle (keys, thresholds, expiry of top-level roles)
  bundle     build a release bundle for the appliance (bundle create)
  sign       sign a bundle's request with development keys
  combine    merge signature responses into the repository
  verify     check a repository as a strict TUF client
  record     verify an exported ceremony record, alone or against its response
  client     TUF client with durable trusted state (init, refresh, download)
  key        list, enrol and verify hardware keys (YubiKey, TPM); development keys
  qr         show a file as animated QR codes, or scan them back (air-gap transfer)
  demo       run a whole release end to end on embedded defaults
  gate       hold npm publishes until threshold signatures arrive (bundle, submit, wait)
  monitor    alarm on registry versions without a threshold-signed TUF target

examples:
  airlock key generate --dev --holder alice --out alice.pem
  airlock init --repo repo --root-key file:r1.pem --root-key file:r2.pem --root-threshold 2 \
      --targets-key file:t1.pem --online-key file:online.pem
  airlock delegate --repo repo --sign-key file:t1.pem --role sigstore --key file:alice.pem \
      --key file:bob.pem --threshold 2 --paths 'sigstore/*'
  airlock bundle create --repo repo --role sigstore --add sigstore-2.0.0.tgz=sigstore/sigstore-2.0.0.tgz \
      --provenance sigstore-2.0.0.sigstore.json --out bundle
  airlock sign --key file:alice.pem bundle --out alice.json
  airlock combine --dev --repo repo bundle alice.json bob.json
  airlock verify --root repo/metadata/1.root.json --repo repo --target sigstore/sigstore-2.0.0.tgz
  airlock key enroll --kind yubikey --serial 12345678 --holder alice --out alice.json
  airlock qr scan --zbarcam --out response.json

Run airlock COMMAND -h for a command's flags. Exit status: 0 success,
1 verification or operation failure, 2 usage error.
`

type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

var commands = map[string]command{
	"init":     cmdInit,
	"delegate": cmdDelegate,
	"root":     cmdRoot,
	"bundle":   cmdBundle,
	"sign":     cmdSign,
	"combine":  cmdCombine,
	"client":   cmdClient,
	"verify":   cmdVerify,
	"record":   cmdRecord,
	"key":      cmdKey,
	"demo":     cmdDemo,
	"qr":       cmdQR,
	"gate":     cmdGate,
	"monitor":  cmdMonitor,
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "-version" || args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(stdout, "airlock", version())
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		var names []string
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		return cli.Exit("airlock", stderr, cli.Usagef("unknown command %q (commands: %s)", args[0], strings.Join(names, ", ")))
	}
	return cli.Exit("airlock "+args[0], stderr, cmd(ctx, args[1:], stdout, stderr))
}

func version() string { return cli.Version(Version) }

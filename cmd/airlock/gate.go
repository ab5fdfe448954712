package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/tuf"
)

// Caps on what the gate subcommands read from a gate.
const (
	maxBundleAnswer = 3 * registry.MaxTarballBytes
	maxGateAnswer   = 1 << 20
)

func cmdGate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "bundle":
			return cmdGateBundle(ctx, args[1:], stdout, stderr)
		case "submit":
			return cmdGateSubmit(ctx, args[1:], stdout, stderr)
		case "wait":
			return cmdGateWait(ctx, args[1:], stdout, stderr)
		}
	}
	fs := cli.NewFlagSet("airlock gate", `usage: airlock gate --upstream URL --repo DIR --online-key URI [--store sqlite:PATH|postgres://...]
       [--listen 127.0.0.1:PORT] [--require-stage] [--sigstore-root trusted_root.json] [--dev]
       airlock gate bundle --gate URL STAGE_ID --out DIR
       airlock gate submit --gate URL STAGE_ID RESPONSE...
       airlock gate wait --gate URL STAGE_ID [--timeout 1h]

A reverse proxy in front of an npm registry that holds every publish until a
threshold of offline signatures approves its exact tarball. npm stage
publish (and a plain npm publish) is kept at the gate; npm install of a
staged version fails with the signatures it awaits. airlock gate bundle
fetches the release bundle for the appliance; airlock gate submit hands the
signature responses back; the gate verifies them as airlock client does,
publishes role, snapshot and timestamp at /tuf/metadata/ and forwards the
tarball upstream. Everything else passes through with the Host kept.

--repo is the repository made by airlock init and airlock delegate, imported
into the store at first start; replicas sharing a PostgreSQL store share it.

example:
  airlock gate --upstream http://127.0.0.1:4873 --repo repo --online-key file:online.pem \
      --store sqlite:/var/lib/airlock/gate.db --listen 127.0.0.1:4880 --require-stage
`, stderr)
	upstream := fs.String("upstream", "", "URL of the npm registry behind the gate")
	repoDir := fs.String("repo", "", "TUF repository folder (imported at first start)")
	onlineKey := fs.String("online-key", "", "snapshot, timestamp and npm signature key URI (ECDSA P-256)")
	storeSpec := fs.String("store", "sqlite:gate.db", "store: sqlite:PATH or postgres://USER@HOST/DB")
	listen := fs.String("listen", "127.0.0.1:4880", "address to listen on")
	requireStage := fs.Bool("require-stage", false, "refuse a plain npm publish (advise npm stage publish)")
	sigstoreRoot := fs.String("sigstore-root", "", "Sigstore trusted_root.json: verify provenance bundles at staging")
	dev := fs.Bool("dev", false, "accept responses made with development keys or without an appliance ceremony")
	pinFile := pinFileFlag(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *upstream == "" || *onlineKey == "" {
		return cli.Usagef("--upstream and --online-key are required")
	}
	up, err := url.Parse(*upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return cli.Usagef("--upstream: want an http(s) URL such as http://127.0.0.1:4873")
	}
	up.Path = strings.TrimSuffix(up.Path, "/")
	store, err := registry.Open(ctx, *storeSpec)
	if err != nil {
		return err
	}
	defer store.Close()
	if *repoDir != "" {
		files, err := readRepo(*repoDir)
		if err != nil {
			return err
		}
		imported, err := store.ImportRepo(ctx, files)
		if err != nil {
			return err
		}
		if imported {
			fmt.Fprintf(stderr, "airlock gate: imported %d repository files from %s\n", len(files), *repoDir)
		}
	}
	if _, err := store.RepoMetadata(ctx); err != nil {
		return fmt.Errorf("%w (give --repo on the first start)", err)
	}
	p, err := keyPrompter(*pinFile, stderr)
	if err != nil {
		return err
	}
	ks, err := cli.OpenKeys(ctx, []string{*onlineKey}, p)
	if err != nil {
		return err
	}
	cfg := registry.GateConfig{Upstream: up, Store: store, Releaser: registry.TUFReleaser{Dev: *dev, Record: store}, Online: ks[0],
		RequireStage: *requireStage, Log: log.New(stderr, "airlock gate: ", log.LstdFlags|log.LUTC)}
	if *sigstoreRoot != "" {
		tr, err := os.ReadFile(*sigstoreRoot)
		if err != nil {
			return err
		}
		if cfg.Provenance, err = provenance.New(provenance.Config{TrustedRoot: tr}); err != nil {
			return err
		}
	}
	gate, err := registry.NewGate(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: gate, ReadHeaderTimeout: 30 * time.Second}
	go gate.Run(ctx)
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	fmt.Fprintf(stderr, "airlock gate: listening on http://%s in front of %s (npm signature key %s)\n", ln.Addr(), up, gate.KeyID())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// readRepo reads the files a gate serves from a repository folder:
// metadata/, targets/ and the repository configuration.
func readRepo(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	cfg, err := os.ReadFile(filepath.Join(dir, "airlock-repo.json"))
	if err != nil {
		return nil, fmt.Errorf("--repo %s: not a repository made by airlock init: %w", dir, err)
	}
	out["airlock-repo.json"] = cfg
	for _, sub := range []string{"metadata", "targets"} {
		files, err := registry.ReadTree(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for name, b := range files {
			out[sub+"/"+name] = b
		}
	}
	return out, nil
}

// gateURL checks --gate and the stage id and returns the route base.
func gateURL(gate, id string) (string, error) {
	u, err := url.Parse(gate)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", cli.Usagef("--gate: want the gate's http(s) URL")
	}
	if len(id) != 36 || strings.Trim(strings.ToLower(id), "0123456789abcdef-") != "" {
		return "", cli.Usagef("STAGE_ID %q is not a stage id (a UUID, as npm stage publish prints)", id)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// gateDo sends a request and decodes a JSON answer; a non-2xx answer
// becomes an error carrying the gate's reason.
func gateDo(ctx context.Context, method, u string, body []byte, max int64, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return resp.StatusCode, err
	}
	if int64(len(b)) > max {
		return resp.StatusCode, fmt.Errorf("the gate's answer is over %d bytes", max)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return resp.StatusCode, fmt.Errorf("the gate refused (%d): %s", resp.StatusCode, e.Error)
		}
		return resp.StatusCode, fmt.Errorf("the gate answered %d", resp.StatusCode)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("the gate's answer is not JSON: %v", err)
	}
	return resp.StatusCode, nil
}

func cmdGateBundle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock gate bundle", "usage: airlock gate bundle --gate URL STAGE_ID --out DIR\n\nWrite the release bundle of a staged version, to carry to the appliance.\n", stderr)
	gate := fs.String("gate", "", "gate URL")
	out := fs.String("out", "", "bundle folder to write (must not exist)")
	if err := cli.Parse(fs, moveFlagsFirst(args)); err != nil {
		return err
	}
	if *gate == "" || *out == "" || fs.NArg() != 1 {
		return cli.Usagef("want --gate URL, --out DIR and one STAGE_ID")
	}
	base, err := gateURL(*gate, fs.Arg(0))
	if err != nil {
		return err
	}
	var b registry.BundleFiles
	if _, err := gateDo(ctx, http.MethodGet, base+"/-/airlock/stage/"+fs.Arg(0)+"/bundle", nil, maxBundleAnswer, &b); err != nil {
		return err
	}
	if _, ok := b.Files["request.json"]; !ok {
		return errors.New("the gate's bundle has no request.json")
	}
	if err := os.Mkdir(*out, 0o755); err != nil {
		return err
	}
	for p, data := range b.Files {
		if !validBundlePath(p) {
			return fmt.Errorf("the gate's bundle names %q, not a clean relative path", p)
		}
		f := filepath.Join(*out, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f, data, 0o644); err != nil {
			return err
		}
	}
	req, err := tuf.ParseRequest(b.Files["request.json"])
	if err != nil {
		return fmt.Errorf("the gate's request.json: %w", err)
	}
	p, err := req.Payload()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "airlock gate bundle: %s version %d, sha256 %s, %d files -> %s\n", req.Role, p.Version, p.SHA256, len(b.Files), *out)
	printRequestFingerprint(stderr, "airlock gate bundle", *out)
	return nil
}

func validBundlePath(p string) bool { return fs.ValidPath(p) && !strings.Contains(p, "\\") }

// readSubmission reads a response file, an exported response folder
// (holding response.json) or signed metadata.
func readSubmission(p string) ([]byte, error) {
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		p = filepath.Join(p, "response.json")
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, registry.MaxSubmissionBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > registry.MaxSubmissionBytes {
		return nil, fmt.Errorf("%s is over %d bytes", p, registry.MaxSubmissionBytes)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not JSON (a signature response or signed metadata)", p)
	}
	return b, nil
}

func cmdGateSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock gate submit", `usage: airlock gate submit --gate URL STAGE_ID RESPONSE...

Hand signature responses (files, or folders the appliance exported) or
combined signed metadata to the gate. The gate verifies them and publishes,
or refuses with the reason and keeps the staged version.
`, stderr)
	gate := fs.String("gate", "", "gate URL")
	if err := cli.Parse(fs, moveFlagsFirst(args)); err != nil {
		return err
	}
	if *gate == "" || fs.NArg() < 2 {
		return cli.Usagef("want --gate URL, a STAGE_ID and at least one RESPONSE")
	}
	base, err := gateURL(*gate, fs.Arg(0))
	if err != nil {
		return err
	}
	if fs.NArg()-1 > registry.MaxSubmissions {
		return cli.Usagef("at most %d responses", registry.MaxSubmissions)
	}
	var sub registry.Submission
	for _, p := range fs.Args()[1:] {
		b, err := readSubmission(p)
		if err != nil {
			return err
		}
		sub.Submissions = append(sub.Submissions, b)
	}
	body, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	var res struct {
		State  string         `json:"state"`
		Reason string         `json:"reason"`
		Stage  map[string]any `json:"stage"`
	}
	if _, err := gateDo(ctx, http.MethodPost, base+"/-/airlock/stage/"+fs.Arg(0)+"/responses", body, maxGateAnswer, &res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s@%v: %s", res.Stage["packageName"], res.Stage["version"], res.State)
	if res.Reason != "" {
		fmt.Fprintf(stdout, " (%s)", res.Reason)
	}
	fmt.Fprintln(stdout)
	return nil
}

func cmdGateWait(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock gate wait", `usage: airlock gate wait --gate URL STAGE_ID [--timeout 1h] [--interval 2s]

Wait for a staged version: exit 0 once it is published, 1 with the reason
when it is rejected or the timeout passes. For CI after npm stage publish.
`, stderr)
	gate := fs.String("gate", "", "gate URL")
	timeout := fs.String("timeout", "1h", "give up after this long")
	interval := fs.String("interval", "2s", "time between polls")
	if err := cli.Parse(fs, moveFlagsFirst(args)); err != nil {
		return err
	}
	if *gate == "" || fs.NArg() != 1 {
		return cli.Usagef("want --gate URL and one STAGE_ID")
	}
	base, err := gateURL(*gate, fs.Arg(0))
	if err != nil {
		return err
	}
	to, err := durationFlag("timeout", *timeout)
	if err != nil {
		return err
	}
	every, err := durationFlag("interval", *interval)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	last := ""
	for {
		var item map[string]any
		_, err := gateDo(ctx, http.MethodGet, base+"/-/stage/"+fs.Arg(0), nil, maxGateAnswer, &item)
		if err == nil {
			state, _ := item["state"].(string)
			reason, _ := item["reason"].(string)
			switch state {
			case registry.StatePublished:
				fmt.Fprintf(stdout, "%v@%v: published\n", item["packageName"], item["version"])
				return nil
			case registry.StateRejected:
				return fmt.Errorf("%v@%v was rejected: %s", item["packageName"], item["version"], reason)
			}
			now := state + " " + reason
			if now != last {
				aw, _ := item["awaiting"].(string)
				fmt.Fprintf(stderr, "airlock gate wait: %v@%v is %s %s %s\n", item["packageName"], item["version"], state, aw, reason)
				last = now
			}
		} else if ctx.Err() == nil && strings.Contains(err.Error(), "(404)") {
			return err
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("gave up after %s: %v", to, err)
			}
			return fmt.Errorf("gave up after %s: stage %s is still not published (%s)", to, fs.Arg(0), strings.TrimSpace(last))
		case <-time.After(every):
		}
	}
}

package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// flowRoles is how many roles the flow benchmarks' repository delegates
// (one per package), as in the load test.
const flowRoles = 200

// flowBench is a gate on a SQLite store over a repository delegating
// flowRoles packages 2-of-2, in front of the unit tests' mini upstream.
type flowBench struct {
	url     string
	signers []hsm.Signer
}

// flowRepo is the flow benchmarks' repository: flowRoles packages, each
// delegated 2-of-2 to alice and bob by targets.
func flowRepo(b *testing.B) (files map[string][]byte, k map[string]hsm.Signer) {
	now := time.Now()
	dir := b.TempDir()
	k = map[string]hsm.Signer{}
	for _, n := range []string{"root", "targets", "online", "alice", "bob"} {
		s, err := hsm.GenerateFileKey(filepath.Join(dir, n+".pem"), hsm.ECDSAP256, n, nil)
		if err != nil {
			b.Fatal(err)
		}
		k[n] = s
	}
	repoDir := filepath.Join(dir, "repo")
	repo, err := tuf.Init(repoDir, tuf.InitOptions{Root: []hsm.Signer{k["root"]}, RootThreshold: 1, Targets: []hsm.Signer{k["targets"]}, TargetsThreshold: 1, Online: k["online"], Now: now})
	if err != nil {
		b.Fatal(err)
	}
	next, _ := repo.NextTargets("targets", now.Add(24*time.Hour))
	ka, _ := tuf.KeyFromSigner(k["alice"])
	kb, _ := tuf.KeyFromSigner(k["bob"])
	for i := range flowRoles {
		name := fmt.Sprintf("pkg-%03d", i)
		if err := tuf.SetDelegation(next, tuf.DelegationSpec{Name: name, Keys: []*metadata.Key{ka, kb}, Threshold: 2, Paths: []string{name + "/-/*"}}); err != nil {
			b.Fatal(err)
		}
	}
	td, _ := repo.Delegation("targets")
	tuf.SignAll(next, td, []hsm.Signer{k["targets"]})
	if err := repo.CommitTargets("targets", next, k["online"], now); err != nil {
		b.Fatal(err)
	}
	files, _ = ReadTree(repoDir)
	return files, k
}

func newFlowBench(b *testing.B) *flowBench {
	ctx := context.Background()
	files, k := flowRepo(b)
	store, err := Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "gate.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if _, err := store.ImportRepo(ctx, files); err != nil {
		b.Fatal(err)
	}
	ups := httptest.NewServer(&miniRegistry{docs: map[string]map[string]json.RawMessage{}, tarballs: map[string][]byte{}})
	b.Cleanup(ups.Close)
	uu, _ := url.Parse(ups.URL)
	g, err := NewGate(GateConfig{Upstream: uu, Store: store, Releaser: TUFReleaser{Dev: true}, Online: k["online"]})
	if err != nil {
		b.Fatal(err)
	}
	gs := httptest.NewServer(g)
	b.Cleanup(gs.Close)
	return &flowBench{url: gs.URL, signers: []hsm.Signer{k["alice"], k["bob"]}}
}

// do sends one request to the gate; a failure is reported with b.Error
// (it may run on another goroutine) and the benchmark fails at its end.
func (f *flowBench) do(b *testing.B, method, path string, body []byte, want int, out any) {
	req, _ := http.NewRequest(method, f.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer good")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		b.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		return
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.Error(err)
		}
	}
}

// BenchmarkGateFlow is one publish through the gate's HTTP API, one at a
// time, over a repository of flowRoles roles: stage the publish document,
// fetch the bundle, sign it (timer stopped) and submit until published
// upstream (the mini upstream stands in for the npm registry).
func BenchmarkGateFlow(b *testing.B) {
	f := newFlowBench(b)
	i := 0
	var stage, bundle, submit time.Duration
	defer func() {
		b.ReportMetric(float64(stage.Microseconds())/float64(i)/1000, "stage-ms/op")
		b.ReportMetric(float64(bundle.Microseconds())/float64(i)/1000, "bundle-ms/op")
		b.ReportMetric(float64(submit.Microseconds())/float64(i)/1000, "submit-ms/op")
	}()
	for b.Loop() {
		name := fmt.Sprintf("pkg-%03d", i%flowRoles)
		version := fmt.Sprintf("1.0.%d", i/flowRoles)
		i++
		tgz := []byte(fmt.Sprintf("tarball of %s@%s", name, version))
		var st struct {
			StageID string `json:"stageId"`
		}
		t0 := time.Now()
		f.do(b, http.MethodPost, "/-/stage/package/"+name, publishDoc(b, name, version, tgz, nil), http.StatusCreated, &st)
		t1 := time.Now()
		var bf BundleFiles
		f.do(b, http.MethodGet, "/-/airlock/stage/"+st.StageID+"/bundle", nil, http.StatusOK, &bf)
		stage, bundle = stage+t1.Sub(t0), bundle+time.Since(t1)
		b.StopTimer()
		req, err := tuf.ParseRequest(bf.Files["request.json"])
		if err != nil {
			b.Fatal(err)
		}
		var sub Submission
		for _, s := range f.signers {
			r, err := online.Sign(req, []hsm.Signer{s}, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			raw, _ := r.Marshal()
			sub.Submissions = append(sub.Submissions, raw)
		}
		body, _ := json.Marshal(sub)
		b.StartTimer()
		var res struct {
			State string `json:"state"`
		}
		t2 := time.Now()
		f.do(b, http.MethodPost, "/-/airlock/stage/"+st.StageID+"/responses", body, http.StatusOK, &res)
		submit += time.Since(t2)
		if res.State != StatePublished {
			b.Fatalf("%s@%s is %s after the submission", name, version, res.State)
		}
	}
}

// BenchmarkGatePhases is flowConcurrent packages at once through each
// phase in turn, as TestGatePublishRate runs them against Verdaccio, here
// in front of the mini upstream so that only the gate's own work counts:
// all stage, then all fetch their bundle, then (timer stopped) all are
// signed, then all submit until published.
func BenchmarkGatePhases(b *testing.B) {
	const flowConcurrent = 40
	f := newFlowBench(b)
	round := 0
	var phase [3]time.Duration
	defer func() {
		for i, name := range []string{"stage", "bundle", "submit"} {
			b.ReportMetric(float64(phase[i].Microseconds())/float64(round)/1000, name+"-ms/op")
		}
	}()
	all := func(step func(i int)) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for i := range flowConcurrent {
			wg.Add(1)
			go func() { defer wg.Done(); step(i) }()
		}
		wg.Wait()
		return time.Since(start)
	}
	for b.Loop() {
		version := fmt.Sprintf("1.0.%d", round)
		round++
		ids := make([]string, flowConcurrent)
		phase[0] += all(func(i int) {
			name := fmt.Sprintf("pkg-%03d", i)
			var st struct {
				StageID string `json:"stageId"`
			}
			f.do(b, http.MethodPost, "/-/stage/package/"+name, publishDoc(b, name, version, []byte("tarball of "+name+"@"+version), nil), http.StatusCreated, &st)
			ids[i] = st.StageID
		})
		reqs := make([][]byte, flowConcurrent)
		phase[1] += all(func(i int) {
			var bf BundleFiles
			f.do(b, http.MethodGet, "/-/airlock/stage/"+ids[i]+"/bundle", nil, http.StatusOK, &bf)
			reqs[i] = bf.Files["request.json"]
		})
		b.StopTimer()
		bodies := make([][]byte, flowConcurrent)
		all(func(i int) {
			req, err := tuf.ParseRequest(reqs[i])
			if err != nil {
				b.Error(err)
				return
			}
			var sub Submission
			for _, s := range f.signers {
				r, err := online.Sign(req, []hsm.Signer{s}, time.Now())
				if err != nil {
					b.Error(err)
					return
				}
				raw, _ := r.Marshal()
				sub.Submissions = append(sub.Submissions, raw)
			}
			bodies[i], _ = json.Marshal(sub)
		})
		b.StartTimer()
		phase[2] += all(func(i int) {
			var res struct {
				State string `json:"state"`
			}
			f.do(b, http.MethodPost, "/-/airlock/stage/"+ids[i]+"/responses", bodies[i], http.StatusOK, &res)
			if res.State != StatePublished {
				b.Errorf("stage %s is %s after the submission", ids[i], res.State)
			}
		})
	}
}

// BenchmarkBundle200 is TUFReleaser.Bundle for one package of a
// repository of flowRoles roles, caches warm (a running gate).
func BenchmarkBundle200(b *testing.B) {
	files, _ := flowRepo(b)
	tgz := []byte("tarball")
	now := time.Now()
	for b.Loop() {
		if _, err := (TUFReleaser{}).Bundle(files, "pkg-007", TargetPath("pkg-007", "1.0.0"), tgz, nil, now); err != nil {
			b.Fatal(err)
		}
	}
}

package registry

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestWhoamiCached stages many versions at once with one npm token: the
// gate asks the upstream registry who it is once and reuses the answer.
// A refused token is asked again each time and refused each time.
func TestWhoamiCached(t *testing.T) {
	f := newGateFixture(t, "sqlite:"+t.TempDir()+"/gate.db")
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.stage("tuf-js", fmt.Sprintf("1.0.%d", i), f.tgz, nil)
		}()
	}
	wg.Wait()
	f.up.mu.Lock()
	asked := f.up.whoamis
	f.up.mu.Unlock()
	if asked != 1 {
		t.Fatalf("12 stages with one token asked upstream whoami %d times, want 1", asked)
	}
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, f.url+"/-/stage/package/tuf-js", strings.NewReader(string(publishDoc(t, "tuf-js", "2.0.0", f.tgz, nil))))
		req.Header.Set("Authorization", "Bearer bad")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a refused token staged: %d", resp.StatusCode)
		}
	}
	f.up.mu.Lock()
	asked = f.up.whoamis
	f.up.mu.Unlock()
	if asked != 3 {
		t.Fatalf("after two stages with a refused token whoami was asked %d times in all, want 3", asked)
	}
}

package registry

import (
	"context"
	"testing"

	"airlock.dev/airlock/registry/pgtest"
)

func TestPostgresStore(t *testing.T) {
	url := pgtest.Start(t)
	RunStoreTests(t, func(t *testing.T) Store {
		s, err := Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

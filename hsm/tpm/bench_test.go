package tpm_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/tpm"
)

// timedTPM adds up the time spent waiting for the device.
type timedTPM struct {
	transport.TPMCloser
	clock *deviceClock
}

type deviceClock struct {
	mu   sync.Mutex
	wait time.Duration
	cmds int
}

func (t *timedTPM) Send(cmd []byte) ([]byte, error) {
	start := time.Now()
	rsp, err := t.TPMCloser.Send(cmd)
	t.clock.mu.Lock()
	t.clock.wait += time.Since(start)
	t.clock.cmds++
	t.clock.mu.Unlock()
	return rsp, err
}

// endlessPIN answers every PIN prompt.
type endlessPIN struct{}

func (endlessPIN) PIN(context.Context, hsm.PINRequest) ([]byte, error) { return []byte(testPIN), nil }
func (endlessPIN) Touch(context.Context, hsm.URI) func()               { return func() {} }

// BenchmarkSign measures one signature end to end (open the device, read
// the lockout counter, prompt, salted policy session, sign, verify), and
// reports how much of it is Airlock's own work: total time minus the time
// spent waiting for the device (airlock-ns/op; the goal is ≤ 10 ms).
func BenchmarkSign(b *testing.B) {
	for _, d := range devices {
		for _, pcrs := range [][]int{nil, {0, 7}} {
			name := d.name
			if pcrs != nil {
				name += "/pcr-bound"
			}
			b.Run(name, func(b *testing.B) {
				dev := d.open(b)
				e := enroll(b, dev, testHandle, pcrs)
				s, err := hsm.Open(context.Background(), e.URI, endlessPIN{})
				if err != nil {
					b.Fatal(err)
				}
				digest := sha256.Sum256([]byte("benchmark"))
				clock := &deviceClock{}
				defer tpm.SetDeviceHook(func(t transport.TPMCloser) transport.TPMCloser {
					return &timedTPM{TPMCloser: t, clock: clock}
				})()
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if _, err := s.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
						b.Fatal(err)
					}
				}
				total := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(clock.wait.Nanoseconds())/float64(b.N), "device-ns/op")
				b.ReportMetric(float64((total-clock.wait).Nanoseconds())/float64(b.N), "airlock-ns/op")
				b.ReportMetric(float64(clock.cmds)/float64(b.N), "commands/op")
			})
		}
	}
}

// BenchmarkEnroll measures enrolling and deleting a key.
func BenchmarkEnroll(b *testing.B) {
	for _, d := range devices {
		b.Run(d.name, func(b *testing.B) {
			dev := d.open(b)
			for i := 0; i < b.N; i++ {
				enroll(b, dev, testHandle, nil)
				if err := tpm.Delete(context.Background(), dev, testHandle); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

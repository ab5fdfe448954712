package appliance

import (
	"errors"
	"fmt"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/appliance/ledger"
)

// Counter is a monotonic counter kept outside the state directory, such as
// a TPM NV counter: nothing that restores the state partition can move it
// back. hsm/tpm.Counter is one.
type Counter interface {
	// Read returns the counter's value; ok is false when it does not exist.
	Read() (value uint64, ok bool, err error)
	// Increment adds one, creating the counter first if needed, and
	// returns the new value.
	Increment() (uint64, error)
	// String names the counter in messages.
	String() string
}

// ErrStateRollback means the state directory is older than the monotonic
// counter it is bound to: an older copy of the state was restored.
var ErrStateRollback = errors.New("the appliance state is older than its monotonic counter")

// BindCounter binds the state to a monotonic counter and checks it: the
// ledger records the counter's value and every signing advances both, the
// ledger first. At open the ledger's value must equal the counter's (or be
// one above it, after a crash between the two writes, which this
// completes); a lower value means an older copy of the whole state
// directory was restored, and the state is refused. The first binding
// needs a counter that does not exist yet, so an unbound state from before
// the binding cannot be bound again.
func (s *StateDir) BindCounter(c Counter) error {
	have, ok, err := c.Read()
	if err != nil {
		return fmt.Errorf("state counter %s: %w", c, err)
	}
	want := s.Ledger.Counter()
	switch {
	case want == 0 && ok:
		return fmt.Errorf("%w: %s is at %d but ledger.json is bound to no counter: this is a copy of the state from before the counter was bound, or the state of another appliance; signing is refused, have the security officer restore the current state", ErrStateRollback, c, have)
	case want == 0:
		v, err := c.Increment()
		if err != nil {
			return fmt.Errorf("state counter %s: %w", c, err)
		}
		n, last := s.Audit.Head()
		if err := s.Ledger.BindCounter(v, ledger.AuditHead{Entries: n, Last: last}); err != nil {
			return err
		}
		s.counter = c
		return s.auditCounter(fmt.Sprintf("state bound to %s at %d", c, v))
	case !ok:
		return fmt.Errorf("%w: ledger.json is bound to %s at %d, which does not exist: the TPM was cleared or this is another machine; signing is refused", ErrStateRollback, c, want)
	case want == have:
	case want == have+1:
		// The ledger was written and the counter not yet advanced.
		v, err := c.Increment()
		if err != nil {
			return fmt.Errorf("state counter %s: %w", c, err)
		}
		if v != want {
			return fmt.Errorf("%w: %s moved to %d, the ledger is bound to %d", ErrStateRollback, c, v, want)
		}
		s.counter = c
		return s.auditCounter(fmt.Sprintf("%s advanced to %d after an interrupted signing", c, v))
	case want < have:
		return fmt.Errorf("%w: ledger.json is bound to %s at %d, the counter is at %d: an older copy of the state directory was restored; signing is refused, have the security officer compare it with the exported ceremony records", ErrStateRollback, c, want, have)
	default:
		return fmt.Errorf("%w: ledger.json is bound to %s at %d, the counter is at only %d: the state does not belong to this counter; signing is refused", ErrStateRollback, c, want, have)
	}
	s.counter = c
	return nil
}

func (s *StateDir) auditCounter(detail string) error {
	_, _, err := s.Audit.Append(audit.Entry{Time: s.clock.Now(), Ceremony: audit.ApplianceCeremony, Step: "counter", Outcome: audit.OutcomeOK,
		Hashes: []audit.Hash{{Name: LedgerHashName, Sum: s.Ledger.Sum()}}, Detail: detail})
	return err
}

// nextCounter is the counter value a signing records in the ledger, 0 when
// the state is not bound to a counter.
func (s *StateDir) nextCounter() (uint64, error) {
	if s.counter == nil {
		return 0, nil
	}
	have, ok, err := s.counter.Read()
	if err != nil {
		return 0, fmt.Errorf("state counter %s: %w", s.counter, err)
	}
	if !ok || have != s.Ledger.Counter() {
		return 0, fmt.Errorf("%w: %s is at %d, the ledger at %d", ErrStateRollback, s.counter, have, s.Ledger.Counter())
	}
	return have + 1, nil
}

// advanceCounter moves the counter to the value the ledger recorded.
func (s *StateDir) advanceCounter() error {
	if s.counter == nil {
		return nil
	}
	v, err := s.counter.Increment()
	if err != nil {
		return fmt.Errorf("state counter %s: %w", s.counter, err)
	}
	if v != s.Ledger.Counter() {
		return fmt.Errorf("%w: %s moved to %d, the ledger recorded %d", ErrStateRollback, s.counter, v, s.Ledger.Counter())
	}
	return nil
}

package appliance

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/appliance/store"
	"airlock.dev/airlock/tuf"
)

// MaxBackupFiles caps the files Reprovision copies into a backup.
const MaxBackupFiles = 10_000

// Reprovision replaces the pinned root, the policy and the Sigstore trust
// (and the npm keys and TPM attestation keys when given) of a provisioned
// state directory, after copying every file of the directory into a new
// backup folder beside it, which it returns. The ledger and the audit log
// stay: what this appliance signed is never forgotten, so versions signed
// before cannot be signed again with other bytes. An audit entry records
// the hashes of the new files and the backup's name.
func Reprovision(path string, p Provision, clock Clock) (string, error) {
	if clock == nil {
		clock = SystemClock
	}
	root, err := tuf.ParseStrict[metadata.RootType](p.Root)
	if err != nil {
		return "", fmt.Errorf("reprovision: root: %w", err)
	}
	if err := tuf.VerifyTrustedRoot(root); err != nil {
		return "", fmt.Errorf("reprovision: root: %w", err)
	}
	if _, err := ParsePolicy(p.Policy); err != nil {
		return "", fmt.Errorf("reprovision: %w", err)
	}
	if len(p.TrustedRoot) == 0 || len(p.TrustedRoot) > MaxTrustedRootBytes || len(p.NPMKeys) > MaxNPMKeysBytes {
		return "", errors.New("reprovision: a sigstore trusted root is needed, and it and the npm keys must be within their caps")
	}
	if len(p.TPMAK) > 0 {
		if _, err := ParseTPMAK(p.TPMAK); err != nil {
			return "", fmt.Errorf("reprovision: %w", err)
		}
	}
	if len(p.PIVRoots) > 0 {
		if _, err := ParsePIVRoots(p.PIVRoots); err != nil {
			return "", fmt.Errorf("reprovision: %w", err)
		}
	}
	// Opening the state checks its ledger and audit log and takes the lock.
	st, err := OpenState(path, clock)
	if err != nil {
		return "", fmt.Errorf("reprovision: %w", err)
	}
	defer st.Close()
	backup := filepath.Clean(st.Path()) + ".backup-" + clock.Now().UTC().Format("20060102T150405Z")
	if err := backupDir(st.Path(), backup); err != nil {
		return "", fmt.Errorf("reprovision: backup: %w", err)
	}
	files := []struct {
		name string
		b    []byte
	}{{PolicyFile, p.Policy}, {TrustedRootFile, p.TrustedRoot}, {NPMKeysFile, p.NPMKeys}, {TPMAKFile, p.TPMAK}, {PIVRootsFile, p.PIVRoots}, {RootFile, p.Root}}
	for _, f := range files {
		if len(f.b) == 0 {
			continue
		}
		if err := st.dir.WriteFile(f.name, f.b); err != nil {
			return backup, fmt.Errorf("reprovision: %w (the old state is in %s)", err, backup)
		}
	}
	_, _, err = st.Audit.Append(audit.Entry{
		Time: clock.Now(), Ceremony: audit.ApplianceCeremony, Step: "reprovision", Outcome: audit.OutcomeOK,
		Hashes: []audit.Hash{{Name: "root", Sum: sha(p.Root)}, {Name: "policy", Sum: sha(p.Policy)},
			{Name: "trusted-root", Sum: sha(p.TrustedRoot)}, {Name: LedgerHashName, Sum: st.Ledger.Sum()}},
		Detail: clipText(fmt.Sprintf("state re-provisioned with root version %d; the previous state is backed up in %s", root.Signed.Version, backup)),
	})
	if err != nil {
		return backup, fmt.Errorf("reprovision: audit log: %w", err)
	}
	return backup, nil
}

// backupDir copies the regular files of dir into backup, a new folder
// (mode 0700), and fsyncs them. The lock file is not copied.
func backupDir(dir, backup string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > MaxBackupFiles {
		return fmt.Errorf("%s holds %d entries, over the %d cap", dir, len(ents), MaxBackupFiles)
	}
	if err := os.Mkdir(backup, 0o700); err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == store.LockFileName {
			continue
		}
		if err := copySync(filepath.Join(dir, e.Name()), filepath.Join(backup, e.Name())); err != nil {
			return err
		}
	}
	d, err := os.Open(backup)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func copySync(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

package online

import (
	"fmt"

	"airlock.dev/airlock/tuf"
)

// CheckRepositoryUniqueKeys refuses a repository whose root, or any
// delegating role on the way from targets to role, lists one public key
// under two key ids: combine counts signatures against these delegations.
func CheckRepositoryUniqueKeys(repo *tuf.Repository, role string) error {
	root, err := repo.Root()
	if err != nil {
		return err
	}
	if err := tuf.CheckUniqueKeysRoot(root); err != nil {
		return fmt.Errorf("repository: %w", err)
	}
	path, err := repo.DelegatorPath(role)
	if err != nil {
		return err
	}
	for _, name := range path {
		m, err := repo.Role(name)
		if err != nil {
			return err
		}
		if err := tuf.CheckUniqueKeysTargets(name, m); err != nil {
			return fmt.Errorf("repository: %w", err)
		}
	}
	return nil
}

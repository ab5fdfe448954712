package appliance

import (
	"runtime/debug"

	"airlock.dev/airlock/appliance/content"
)

// LimitMemory asks the Go runtime to collect harder as the process nears
// three quarters of the review's memory budget, so that garbage never
// carries the peak over content.MemoryBudget. The review's own caps bound
// what is live; this bounds what is dead but not yet collected.
func LimitMemory() { debug.SetMemoryLimit(content.MemoryBudget * 3 / 4) }

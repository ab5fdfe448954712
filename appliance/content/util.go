package content

import "sort"

func sortIndexes(x []int, less func(a, b int) bool) {
	sort.SliceStable(x, func(i, j int) bool { return less(x[i], x[j]) })
}

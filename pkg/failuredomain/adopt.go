package failuredomain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IndexAnnotation records the index given to a Machine whose name carries
// none. The name is read first: a Machine whose name has an index keeps that
// index whatever the annotation says.
const IndexAnnotation = "machines.quorumguard.io/index"

// Named is what index assignment knows of one selected control-plane Machine.
type Named struct {
	Name string
	// Annotation is the value of IndexAnnotation on the Machine, "" for none.
	Annotation string
	Deleting   bool
}

// Assignment is the index a Machine stands for.
type Assignment struct {
	Index int
	// Adopted says the name carries no index: Index comes from the
	// annotation, or, when Pending, is given now and not yet recorded.
	Adopted bool
	Pending bool
	// Err, when set, says why the Machine has no index; Index is then 0.
	Err error
}

// AssignIndexes gives every Machine the index it stands for, the way the
// ControlPlaneMachineSet operator adopts a Machine whose name carries none:
//
//  1. The number after the last "-" of the name, when there is one.
//  2. Else a recorded IndexAnnotation that is a number.
//  3. Else the lowest index from 0 to replicas-1 that no Machine holds by
//     rule 1 or 2 and no Machine before it was given here; Machines that are
//     not deleting go first, then by name. With none free, the Machine
//     cannot be adopted and Err says so.
//
// Once given, an index is recorded (IndexAnnotation) so that it does not
// change when a replacement for that index, named with it, appears. Example,
// 3 replicas: master-0, master-2 and bootstrap-master give bootstrap-master
// index 1; with master-0, master-1, master-2 and extra-master, no index is
// free and extra-master is not adopted.
func AssignIndexes(replicas int, machines []Named) map[string]Assignment {
	out := make(map[string]Assignment, len(machines))
	used := map[int]bool{}
	var rest []Named
	for _, m := range machines {
		if i, err := IndexOf(m.Name); err == nil {
			out[m.Name] = Assignment{Index: i}
			used[i] = true
			continue
		}
		if i, ok := annotatedIndex(m.Annotation); ok {
			out[m.Name] = Assignment{Index: i, Adopted: true}
			used[i] = true
			continue
		}
		rest = append(rest, m)
	}
	slices.SortFunc(rest, func(a, b Named) int {
		if a.Deleting != b.Deleting {
			if a.Deleting {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	next := 0
	for _, m := range rest {
		for next < replicas && used[next] {
			next++
		}
		if next >= replicas {
			inUse := make([]int, 0, len(used))
			for i := range used {
				inUse = append(inUse, i)
			}
			slices.Sort(inUse)
			out[m.Name] = Assignment{Err: fieldErr(describe("Machine", "", m.Name), "metadata.name", ErrInvalid,
				"%q carries no index and cannot be adopted: every index of the %d replicas is taken (indexes in use: %s)",
				m.Name, replicas, intList(inUse))}
			continue
		}
		out[m.Name] = Assignment{Index: next, Adopted: true, Pending: true}
		used[next] = true
	}
	return out
}

func annotatedIndex(v string) (int, bool) {
	if v == "" || len(v) > 9 {
		return 0, false
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 || strconv.Itoa(i) != v {
		return 0, false
	}
	return i, true
}

func intList(is []int) string {
	parts := make([]string, len(is))
	for i, v := range is {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ", ")
}

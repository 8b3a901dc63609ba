package snapshot

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// File names are etcd-<UTC time to the nanosecond>-member-<id in hex>-<Machine>.db: the fixed
// width time sorts them oldest first by name alone, and the member and Machine say which
// removal each was taken for. Files in progress start with a dot and end in .part, so that a
// crash never leaves one that looks complete.
const (
	timeLayout = "20060102T150405.000000000Z"
	tempPrefix = ".etcd-"
	tempSuffix = ".part"
)

var fileName = regexp.MustCompile(`^etcd-(\d{8}T\d{6}\.\d{9}Z)-member-([0-9a-f]+)(?:-([A-Za-z0-9._-]+))?\.db$`)

// unsafeChars are what a Machine name may not bring into a file name.
var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// nameFor is the file name of a snapshot taken at t before removing member of machine.
func nameFor(t time.Time, member uint64, machine string) string {
	name := fmt.Sprintf("etcd-%s-member-%x", t.UTC().Format(timeLayout), member)
	if m := strings.Trim(unsafeChars.ReplaceAllString(machine, "_"), "."); m != "" {
		name += "-" + m
	}
	return name + ".db"
}

// File is one snapshot in the directory.
type File struct {
	Name   string
	Size   int64
	Time   time.Time
	Member uint64
}

// parseName reads a snapshot's time and member from its name; ok is false for any other file.
func parseName(name string) (File, bool) {
	m := fileName.FindStringSubmatch(name)
	if m == nil {
		return File{}, false
	}
	t, err := time.Parse(timeLayout, m[1])
	if err != nil {
		return File{}, false
	}
	id, err := strconv.ParseUint(m[2], 16, 64)
	if err != nil {
		return File{}, false
	}
	return File{Name: name, Time: t, Member: id}, true
}

// BudgetError is a snapshot that alone is larger than the size budget: keeping it would
// break the budget, and evicting every other snapshot would not make room.
type BudgetError struct {
	Name         string
	Size, Budget int64
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("snapshot %s is %d bytes, more than the whole --snapshot-budget of %d bytes: it is not kept; raise --snapshot-budget above the etcd database size", e.Name, e.Size, e.Budget)
}

// retain decides which snapshots to evict once written has been added to files (the
// snapshots in the directory, written among them):
//   - the newest keep are kept, the older evicted;
//   - then, with a budget (> 0), the oldest are evicted while the total size exceeds it;
//   - written itself is never evicted: when it alone exceeds the budget, nothing is evicted
//     and the answer is a *BudgetError (the caller deletes written; the older snapshots stay,
//     as they fitted before).
//
// For example, keep 3 and a budget of 250 over snapshots of 100 bytes a, b, c, then d
// written: keep evicts a (b, c, d are the newest three), and the budget evicts b (300 > 250),
// leaving c and d.
func retain(files []File, written string, keep int, budget int64) ([]File, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	i := slices.IndexFunc(files, func(f File) bool { return f.Name == written })
	if i < 0 {
		return nil, fmt.Errorf("snapshot %s is not in the directory", written)
	}
	if budget > 0 && files[i].Size > budget {
		return nil, &BudgetError{Name: written, Size: files[i].Size, Budget: budget}
	}
	// written goes last: it is the newest snapshot whatever the clock said.
	w := files[i]
	files = append(slices.Delete(files, i, i+1), w)
	var evict []File
	if keep < 1 {
		keep = 1
	}
	if n := len(files) - keep; n > 0 {
		evict, files = append(evict, files[:n]...), files[n:]
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	for budget > 0 && total > budget && len(files) > 1 {
		total -= files[0].Size
		evict, files = append(evict, files[0]), files[1:]
	}
	return evict, nil
}

package snapshot

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestRetain(t *testing.T) {
	at := func(i int) time.Time { return time.Date(2026, 3, 1, 12, i, 0, 0, time.UTC) }
	file := func(i int, size int64) File {
		return File{Name: nameFor(at(i), 0x10, "master-0"), Size: size, Time: at(i), Member: 0x10}
	}
	names := func(fs []File) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		files   []File
		written int // index in files
		keep    int
		budget  int64
		evict   []File
		err     bool
	}{
		{name: "fewer than keep, no budget: nothing goes", files: []File{file(0, 100), file(1, 100)}, written: 1, keep: 3},
		{name: "one over keep: the oldest goes", files: []File{file(0, 100), file(1, 100), file(2, 100), file(3, 100)}, written: 3, keep: 3,
			evict: []File{file(0, 100)}},
		{name: "keep then the budget, as worked out above retain", files: []File{file(0, 100), file(1, 100), file(2, 100), file(3, 100)}, written: 3, keep: 3, budget: 250,
			evict: []File{file(0, 100), file(1, 100)}},
		{name: "the budget evicts every older one but never the one written", files: []File{file(0, 100), file(1, 100), file(2, 200)}, written: 2, keep: 5, budget: 200,
			evict: []File{file(0, 100), file(1, 100)}},
		{name: "the one written alone over the budget: an error, nothing evicted", files: []File{file(0, 100), file(1, 300)}, written: 1, keep: 5, budget: 200, err: true},
		{name: "the one written is kept even when its name sorts first", files: []File{file(0, 100), file(1, 100)}, written: 0, keep: 1,
			evict: []File{file(1, 100)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evict, err := retain(tc.files, tc.files[tc.written].Name, tc.keep, tc.budget)
			var be *BudgetError
			if tc.err != errors.As(err, &be) {
				t.Fatalf("err %v; want a BudgetError: %v", err, tc.err)
			}
			if !slices.Equal(names(evict), names(tc.evict)) {
				t.Errorf("evicts %q; want %q", names(evict), names(tc.evict))
			}
		})
	}
}

func TestFileNames(t *testing.T) {
	a := nameFor(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), 0xabc, "master-0")
	b := nameFor(time.Date(2026, 3, 1, 10, 0, 0, 5, time.UTC), 0x1, "master-1")
	if a >= b {
		t.Errorf("%s sorts after %s", a, b)
	}
	f, ok := parseName(a)
	if !ok || f.Member != 0xabc || !f.Time.Equal(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("parseName(%s) = %+v, %v", a, f, ok)
	}
	if n := nameFor(time.Unix(0, 0), 1, "../etc/pass wd"); n != "etcd-19700101T000000.000000000Z-member-1-_etc_pass_wd.db" {
		t.Errorf("an unsafe Machine name gives %s", n)
	}
	for _, other := range []string{".etcd-123.part", "etcd.db", "notes.txt", "etcd-x-member-1.db"} {
		if _, ok := parseName(other); ok {
			t.Errorf("%s was taken for a snapshot", other)
		}
	}
}

func TestSources(t *testing.T) {
	ms := []Member{
		{ID: 1, ClientURLs: []string{"a"}, Healthy: true},
		{ID: 2, ClientURLs: []string{"b"}, Healthy: false},
		{ID: 3, ClientURLs: []string{"c"}, Healthy: true, Learner: true},
		{ID: 4, Healthy: true},
		{ID: 5, ClientURLs: []string{"e"}, Healthy: true},
	}
	var got []uint64
	for _, m := range Sources(ms, 1) {
		got = append(got, m.ID)
	}
	if want := []uint64{5, 1}; !slices.Equal(got, want) {
		t.Errorf("sources %v; want %v (healthy voters with a URL, the removed one last)", got, want)
	}
}

func TestDigesterAcrossWriteSizes(t *testing.T) {
	snap := fakeSnapshot(3)
	for _, chunk := range []int{1, 7, 31, 32, 33, 4096, len(snap)} {
		d := newDigester()
		for i := 0; i < len(snap); i += chunk {
			d.Write(snap[i:min(i+chunk, len(snap))])
		}
		if err := d.check(); err != nil {
			t.Errorf("written %d bytes at a time: %v", chunk, err)
		}
	}
}

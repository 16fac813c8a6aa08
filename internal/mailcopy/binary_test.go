package mailcopy

import (
	"reflect"
	"testing"
)

func TestReplaceInMap(t *testing.T) {
	m := []UIDMapRange{{Src: 1, Dst: 10, N: 5}, {Src: 8, Dst: 20, N: 1}}
	for _, tc := range []struct {
		name     string
		src, dst uint32
		want     []UIDMapRange
	}{
		{"first of a range", 1, 99, []UIDMapRange{{1, 99, 1}, {2, 11, 4}, {8, 20, 1}}},
		{"middle of a range", 3, 99, []UIDMapRange{{1, 10, 2}, {3, 99, 1}, {4, 13, 2}, {8, 20, 1}}},
		{"last of a range", 5, 99, []UIDMapRange{{1, 10, 4}, {5, 99, 1}, {8, 20, 1}}},
		{"a range of one", 8, 99, []UIDMapRange{{1, 10, 5}, {8, 99, 1}}},
	} {
		got := replaceInMap(m, tc.src, tc.dst)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: replaceInMap(%d, %d) = %v, want %v", tc.name, tc.src, tc.dst, got, tc.want)
		}
		for u := uint32(1); u <= 8; u++ {
			want := lookupMap(m, u)
			if u == tc.src {
				want = tc.dst
			}
			if l := lookupMap(got, u); l != want {
				t.Errorf("%s: lookupMap(%d) = %d, want %d", tc.name, u, l, want)
			}
		}
	}
}

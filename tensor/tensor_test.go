package tensor

import (
	"testing"

	"github.com/golem-ml/golem/backend/cpu"
)

// HostInto copies into the given slice when it has room and allocates
// otherwise; either way the values are the tensor's.
func TestHostInto(t *testing.T) {
	be := cpu.New()
	x := FromHost(be, []float32{1, 2, 3}, 3)
	buf := make([]float32, 8)
	got := x.HostInto(buf)
	if len(got) != 3 || &got[0] != &buf[0] || got[0] != 1 || got[2] != 3 {
		t.Fatalf("HostInto with room: %v (shares memory: %v)", got, &got[0] == &buf[0])
	}
	small := make([]float32, 2)
	got = x.HostInto(small)
	if len(got) != 3 || &got[0] == &small[0] || got[1] != 2 {
		t.Fatalf("HostInto without room: %v", got)
	}
}

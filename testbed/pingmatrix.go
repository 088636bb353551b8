package testbed

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/torstitch/torstitch/testbed/clab"
)

// SegmentLabel marks a VM node with its L2 segment (the VNI its VLAN is
// stitched into): VMs of one segment must reach each other, others not.
const SegmentLabel = "torstitch.segment"

// VM is a node of the ping matrix: a SegmentLabel label and an address in
// its VM_IP environment variable.
type VM struct {
	Name, Segment, IP string
}

// VMs returns the VMs of t, in the topology's node order.
func VMs(t *clab.Topology) []VM {
	var vms []VM
	for _, n := range t.Nodes {
		seg, ok := n.Labels[SegmentLabel]
		ip, _, _ := strings.Cut(n.Env["VM_IP"], "/")
		if ok && ip != "" {
			vms = append(vms, VM{n.Name, seg, ip})
		}
	}
	return vms
}

// Reachability is the outcome of PingMatrix.
type Reachability struct {
	VMs []VM
	// Reached[i][j]: VMs[i] got an answer from VMs[j].
	Reached [][]bool
	// Converged is the time until the last same-segment pair answered or
	// gave up.
	Converged time.Duration
}

// PingMatrix pings every VM of lab from every other (one ICMP echo, 1 s
// wait), in parallel. Pairs of one segment try again until they answer or
// converge has passed. Pairs of different segments are tried once each,
// after that, when every MAC is known: isolation must hold at once.
func PingMatrix(ctx context.Context, lab Runtime, converge time.Duration) *Reachability {
	vms := VMs(lab.Topo())
	r := &Reachability{VMs: vms, Reached: make([][]bool, len(vms))}
	for i := range r.Reached {
		r.Reached[i] = make([]bool, len(vms))
	}
	ping := func(i, j int) bool {
		_, err := lab.Exec(ctx, vms[i].Name, "ping", "-c", "1", "-W", "1", vms[j].IP)
		return err == nil
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range vms {
		for j := range vms {
			if i == j || vms[i].Segment != vms[j].Segment {
				continue
			}
			wg.Go(func() {
				deadline := time.Now().Add(converge)
				for {
					r.Reached[i][j] = ping(i, j)
					if r.Reached[i][j] || time.Now().After(deadline) || ctx.Err() != nil {
						return
					}
				}
			})
		}
	}
	wg.Wait()
	r.Converged = time.Since(start)
	for i := range vms {
		for j := range vms {
			if vms[i].Segment != vms[j].Segment {
				wg.Go(func() { r.Reached[i][j] = ping(i, j) })
			}
		}
	}
	wg.Wait()
	return r
}

// want reports whether VMs[i] must reach VMs[j].
func (r *Reachability) want(i, j int) bool { return r.VMs[i].Segment == r.VMs[j].Segment }

// OK reports whether every pair of one segment reached each other and no
// pair of different segments did.
func (r *Reachability) OK() bool { return len(r.Failures()) == 0 }

// Counts returns the number of same-segment pairs (which must reach each
// other) and of cross-segment pairs (which must not).
func (r *Reachability) Counts() (reach, isolated int) {
	for i := range r.VMs {
		for j := range r.VMs {
			switch {
			case i == j:
			case r.want(i, j):
				reach++
			default:
				isolated++
			}
		}
	}
	return reach, isolated
}

// Failures lists the pairs that do not match their segments, in matrix
// order: "A(SEG) cannot reach B(SEG)" or "LEAK A(SEG) reaches B(SEG)".
func (r *Reachability) Failures() []string {
	var out []string
	for i, a := range r.VMs {
		for j, b := range r.VMs {
			switch {
			case i == j || r.Reached[i][j] == r.want(i, j):
			case r.Reached[i][j]:
				out = append(out, fmt.Sprintf("LEAK %s(%s) reaches %s(%s)", a.Name, a.Segment, b.Name, b.Segment))
			default:
				out = append(out, fmt.Sprintf("%s(%s) cannot reach %s(%s)", a.Name, a.Segment, b.Name, b.Segment))
			}
		}
	}
	return out
}

// WriteTable prints the matrix (ok, isolated, LEAK, FAIL per pair) and a
// last line saying whether it is as expected.
func (r *Reachability) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	header := []string{"from \\ to"}
	for _, v := range r.VMs {
		header = append(header, fmt.Sprintf("%s(%s)", v.Name, v.Segment))
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for i, src := range r.VMs {
		row := []string{src.Name}
		for j := range r.VMs {
			cell := "-"
			if i != j {
				switch got, want := r.Reached[i][j], r.want(i, j); {
				case got && want:
					cell = "ok"
				case !got && !want:
					cell = "isolated"
				case got:
					cell = "LEAK"
				default:
					cell = "FAIL"
				}
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	fmt.Fprintf(w, "matrix %s\n", map[bool]string{true: "as expected", false: "NOT as expected"}[r.OK()])
}

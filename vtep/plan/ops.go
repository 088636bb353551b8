package plan

import (
	"strconv"

	"github.com/torstitch/torstitch/vtep/vtepdb"
)

// Op is the kind of one change. Ops are numbered in plan order: Plan lists
// all changes of one op together, ops in ascending order, so that within one
// transaction (and across the phases the applier sends) a row exists before
// anything refers to it and is no longer referred to when it goes.
type Op uint8

const (
	LSCreate   Op = iota + 1
	LSUpdate      // rename, new tunnel key or replication mode
	BindingSet    // insert, or replace atomically when Rebind
	UcastAdd
	UcastUpdate // new locator or IP of an existing row
	McastSet    // insert or update the unknown-dst row with a new locator set
	TunnelBFD   // set torstitch's bfd_params keys on an existing Tunnel row
	BindingDelete
	UcastDelete
	McastDelete
	LSDelete // only once nothing references the logical switch
	numOps
)

// Phase groups the ops whose changes commute: the applier may have several
// transactions of one phase in flight and starts the next phase once they
// have all answered. Phases follow each other in op order.
type Phase uint8

const (
	PhaseSwitches      Phase = iota + 1 // logical switches created or updated
	PhaseRows                           // rows in the logical switches: bindings, remote MACs, flood lists; tunnels' BFD
	PhaseDeletes                        // those rows removed
	PhaseSwitchDeletes                  // logical switches removed
)

// Ref says which rows a change refers to by key rather than by UUID: rows
// that an earlier transaction of the same apply may be creating, so the
// applier resolves them (or waits for that transaction) first.
type Ref uint8

const (
	RefSwitch   Ref = 1 << iota // the logical switch of Change.VNI
	RefLocator                  // the vxlan locator of Change.VTEP
	RefLocators                 // the vxlan locators of Change.VTEPs
)

// OpInfo describes one kind of change.
type OpInfo struct {
	Name  string // for logs and tests
	Phase Phase
	Table string // the table the change writes (besides locators and locator sets it may insert)
	Refs  Ref
}

// ops describes every kind of change once; a new op is a new line here (and
// its operations in the applier).
var ops = [numOps]OpInfo{
	LSCreate:      {"ls-create", PhaseSwitches, vtepdb.LogicalSwitchTable, 0},
	LSUpdate:      {"ls-update", PhaseSwitches, vtepdb.LogicalSwitchTable, 0},
	BindingSet:    {"binding-set", PhaseRows, vtepdb.PhysicalPortTable, RefSwitch},
	UcastAdd:      {"ucast-add", PhaseRows, vtepdb.UcastMacsRemoteTable, RefSwitch | RefLocator},
	UcastUpdate:   {"ucast-update", PhaseRows, vtepdb.UcastMacsRemoteTable, RefLocator},
	McastSet:      {"mcast-set", PhaseRows, vtepdb.McastMacsRemoteTable, RefSwitch | RefLocators},
	TunnelBFD:     {"tunnel-bfd", PhaseRows, vtepdb.TunnelTable, 0},
	BindingDelete: {"binding-delete", PhaseDeletes, vtepdb.PhysicalPortTable, 0},
	UcastDelete:   {"ucast-delete", PhaseDeletes, vtepdb.UcastMacsRemoteTable, 0},
	McastDelete:   {"mcast-delete", PhaseDeletes, vtepdb.McastMacsRemoteTable, 0},
	LSDelete:      {"ls-delete", PhaseSwitchDeletes, vtepdb.LogicalSwitchTable, 0},
}

// Ops returns every op, in plan order.
func Ops() []Op {
	out := make([]Op, 0, numOps-1)
	for o := Op(1); o < numOps; o++ {
		out = append(out, o)
	}
	return out
}

// Valid reports whether o is a known op.
func (o Op) Valid() bool { return o > 0 && o < numOps }

// Info describes o; the zero OpInfo for an unknown op.
func (o Op) Info() OpInfo {
	if !o.Valid() {
		return OpInfo{}
	}
	return ops[o]
}

// Phase is o's phase (0 for an unknown op).
func (o Op) Phase() Phase { return o.Info().Phase }

func (o Op) String() string {
	if o.Valid() {
		return ops[o].Name
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

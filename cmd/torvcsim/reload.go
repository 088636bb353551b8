package main

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/torstitch/torstitch/vdsvlan/vcsimlab"
)

// simulator is what reload changes: the running vcsimlab.Lab.
type simulator interface {
	SetPortGroupVLAN(ctx context.Context, pg vcsimlab.PortGroupSpec) error
	MoveVM(ctx context.Context, name, host string) error
}

// reload applies the differences between the running inventory cur and the
// re-read file next that a running simulator can take: a port group's VLAN
// policy (VLAN, trunk or PVLAN) and a VM's host. Other differences are
// logged and left alone (restart torvcsim for them). It returns the
// inventory now served.
func reload(ctx context.Context, sim simulator, cur, next vcsimlab.Spec, log *slog.Logger) (vcsimlab.Spec, error) {
	served := cur
	served.PortGroups = append([]vcsimlab.PortGroupSpec(nil), cur.PortGroups...)
	served.VMs = append([]vcsimlab.VMSpec(nil), cur.VMs...)
	var applied, ignored int
	for _, pg := range next.PortGroups {
		i := indexOf(served.PortGroups, func(p vcsimlab.PortGroupSpec) bool { return p.Name == pg.Name })
		if i < 0 {
			ignored++
			log.Warn("reload: new port group not applied (restart torvcsim)", "port_group", pg.Name)
			continue
		}
		old := served.PortGroups[i]
		if reflect.DeepEqual(vlanOf(old), vlanOf(pg)) {
			continue
		}
		if err := sim.SetPortGroupVLAN(ctx, pg); err != nil {
			return served, fmt.Errorf("reload: port group %s: %w", pg.Name, err)
		}
		old.VLAN, old.Trunk, old.PVLAN = pg.VLAN, pg.Trunk, pg.PVLAN
		served.PortGroups[i] = old
		applied++
		log.Info("reload: port group VLAN changed", "port_group", pg.Name, "vlan", fmtVLAN(pg))
	}
	for _, vm := range next.VMs {
		i := indexOf(served.VMs, func(v vcsimlab.VMSpec) bool { return v.Name == vm.Name })
		if i < 0 {
			ignored++
			log.Warn("reload: new VM not applied (restart torvcsim)", "vm", vm.Name)
			continue
		}
		if served.VMs[i].Host == vm.Host {
			continue
		}
		if err := sim.MoveVM(ctx, vm.Name, vm.Host); err != nil {
			return served, fmt.Errorf("reload: vm %s: %w", vm.Name, err)
		}
		log.Info("reload: VM moved", "vm", vm.Name, "from", served.VMs[i].Host, "to", vm.Host)
		served.VMs[i].Host = vm.Host
		applied++
	}
	log.Info("inventory reloaded", "applied", applied, "ignored", ignored)
	return served, nil
}

type vlanPolicy struct {
	VLAN  *int32
	Trunk []string
	PVLAN *int32
}

func vlanOf(pg vcsimlab.PortGroupSpec) vlanPolicy {
	return vlanPolicy{pg.VLAN, pg.Trunk, pg.PVLAN}
}

func fmtVLAN(pg vcsimlab.PortGroupSpec) string {
	switch {
	case pg.VLAN != nil:
		return fmt.Sprint(*pg.VLAN)
	case len(pg.Trunk) > 0:
		return fmt.Sprint("trunk ", pg.Trunk)
	case pg.PVLAN != nil:
		return fmt.Sprint("pvlan ", *pg.PVLAN)
	}
	return "untagged"
}

func indexOf[T any](s []T, match func(T) bool) int {
	for i, v := range s {
		if match(v) {
			return i
		}
	}
	return -1
}

package vdsvlan

import (
	"slices"
	"sort"
	"time"

	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vtep/l2"
)

// PublishCounts are cumulative counters, for metrics.
type PublishCounts struct {
	Created  uint64 `json:"created"`
	Deleted  uint64 `json:"deleted"`
	Restored uint64 `json:"restored"` // drift repaired (rename, VLAN, description, deleted port group recreated)
	Adopted  uint64 `json:"adopted"`  // ownership field set on a port group found with our mark only
	Errors   uint64 `json:"errors"`   // failed vCenter actions and networks entering the error state
}

// PublisherStatus is the publisher's state for the API and metrics.
type PublisherStatus struct {
	Switch   string           `json:"switch"`
	Pool     string           `json:"pool,omitempty"`
	State    string           `json:"state"` // connecting, connected, disconnected, error
	Err      string           `json:"error,omitempty"`
	LastPass time.Time        `json:"last_pass,omitzero"`
	Networks []publish.Status `json:"networks"`
	Counts   PublishCounts    `json:"counts"`
}

// Status returns the publisher's state. Desired networks not yet planned
// show as pending.
func (p *Publisher) Status() PublisherStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PublisherStatus{Switch: p.cfg.PublishSwitch, Pool: p.pool.String(), State: p.state, Err: p.err,
		LastPass: p.lastPass, Counts: p.counts}
	seen := map[l2.VNI]bool{}
	for _, s := range p.statuses {
		s.VMs = slices.Clone(s.VMs)
		st.Networks = append(st.Networks, s)
		seen[s.VNI] = true
	}
	for _, n := range p.desired {
		if !seen[n.VNI] {
			st.Networks = append(st.Networks, publish.Status{VNI: n.VNI, Name: n.Name, VLAN: n.VLAN, Source: n.Source,
				State: publish.StatePending, Error: "waiting for vCenter"})
		}
	}
	// Sources follow the desired set (a network moved from torctl to config).
	src := map[l2.VNI]string{}
	for _, n := range p.desired {
		src[n.VNI] = n.Source
	}
	for i := range st.Networks {
		if s, ok := src[st.Networks[i].VNI]; ok {
			st.Networks[i].Source = s
		}
	}
	sort.SliceStable(st.Networks, func(i, j int) bool { return st.Networks[i].VNI < st.Networks[j].VNI })
	return st
}

func (p *Publisher) currentGen() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reqGen
}

func (p *Publisher) finishPass(gen uint64) {
	p.mu.Lock()
	if gen > p.doneGen {
		p.doneGen = gen
	}
	close(p.passDone)
	p.passDone = make(chan struct{})
	p.mu.Unlock()
}

func (p *Publisher) setState(state string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.err = state, ""
	if err != nil {
		p.err = err.Error()
	}
}

// record publishes a pass's statuses: a failed action puts its network in
// the error state, the last drift report stays visible while the network
// exists, the counts add up, and a pass without a fatal error means
// connected.
func (p *Publisher) record(sts []publish.Status, failed map[l2.VNI]string, cnt PublishCounts, fatal error) {
	prevErr := map[l2.VNI]bool{}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.statuses {
		prevErr[s.VNI] = s.State == publish.StateError
	}
	for i := range sts {
		if msg, ok := failed[sts[i].VNI]; ok {
			sts[i].State, sts[i].Error = publish.StateError, msg
		}
		if sts[i].State == publish.StateError && !prevErr[sts[i].VNI] {
			cnt.Errors++
		}
		switch d := sts[i].Drift; {
		case d == "":
			sts[i].Drift = p.drift[sts[i].VNI]
		case d != p.drift[sts[i].VNI]:
			p.log.Warn("published network changed in vCenter", "vni", sts[i].VNI, "name", sts[i].Name, "drift", d)
			p.drift[sts[i].VNI] = d
		}
	}
	p.statuses = sts
	p.lastPass = time.Now()
	p.counts.Created += cnt.Created
	p.counts.Deleted += cnt.Deleted
	p.counts.Restored += cnt.Restored
	p.counts.Adopted += cnt.Adopted
	p.counts.Errors += cnt.Errors
	if fatal == nil {
		p.state, p.err = StateConnected, ""
	}
}

package vdsvlan

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/torstitch/torstitch/vdsvlan/publish"
)

// Run keeps vCenter in step with the desired networks until ctx is done;
// then it returns nil.
func (p *Publisher) Run(ctx context.Context) error {
	var c *conn
	defer func() {
		if c != nil {
			c.close(ctx)
		}
	}()
	bo := newBackoff()
	for ctx.Err() == nil {
		if c == nil {
			c = p.connect(ctx)
		}
		if c != nil {
			gen := p.currentGen()
			err := p.pass(ctx, c)
			p.finishPass(gen)
			if err != nil && ctx.Err() == nil {
				p.log.Warn("publishing networks: vCenter pass failed; keeping port groups as they are", "err", err)
				c.close(ctx)
				c = nil
				p.setState(StateDisconnected, err)
			} else {
				bo.reset()
			}
		}
		wait := p.cfg.resync()
		if c == nil {
			wait = bo.next()
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-p.trigger:
		case <-timer.C:
		case req := <-p.reqs:
			req(ctx, c)
			// The request may have found the session dead; the next pass
			// notices and reconnects.
		}
		timer.Stop()
	}
	p.setState(StateDisconnected, errors.New("stopped"))
	return nil
}

// connect logs in to vCenter (without a vAPI session: the publisher needs
// none). A failure goes into the state and ends the pass Sync waits for; it
// returns nil then.
func (p *Publisher) connect(ctx context.Context) *conn {
	p.setState(StateConnecting, nil)
	cfg := p.cfg
	cfg.VNIPolicy.Mode = ""
	c, err := connect(ctx, cfg, p.log)
	if err != nil {
		p.setState(failedState(err), err)
		p.finishPass(p.currentGen())
		return nil
	}
	return c
}

// maxRounds bounds the plan/apply rounds of one pass: a create is
// followed by a round that adopts the new port group (sets its field).
const maxRounds = 4

// pass plans and applies until nothing is left to do (or maxRounds).
// It returns an error only when vCenter could not be read or written for
// reasons other than the network's own (those go into its status).
func (p *Publisher) pass(ctx context.Context, c *conn) error {
	for round := 0; round < maxRounds; round++ {
		key, _, err := p.fieldKey(ctx, c, false)
		if err != nil {
			return err
		}
		obs, cfgs, err := p.observe(ctx, c, key)
		if err != nil {
			return err
		}
		p.mu.Lock()
		in := publish.Input{Agent: p.agent, Switch: p.cfg.PublishSwitch, Pool: p.pool, Desired: slices.Clone(p.desired),
			Obs: obs, Last: p.last, Prev: p.prev}
		p.mu.Unlock()
		acts, sts := publish.Plan(in)
		failed, err := p.apply(ctx, c, obs, cfgs, acts, sts)
		if err != nil {
			return err
		}
		if len(acts) == 0 || failed {
			return nil // a failed action is retried on the next pass
		}
	}
	return nil
}

// apply runs the actions, records the statuses and remembers what the next
// plan needs. It reports whether an action failed; the error is that of a
// failed action that ends the session.
func (p *Publisher) apply(ctx context.Context, c *conn, obs publish.Observed, cfgs map[string]*types.DVPortgroupConfigInfo,
	acts []publish.Action, sts []publish.Status) (bool, error) {
	failed, cnt, fatal := p.runActions(ctx, c, obs, cfgs, acts)
	p.record(sts, failed, cnt, fatal)
	p.remember(sts)
	return len(failed) > 0, fatal
}

// remember keeps, for the next plans, each network's last VLAN and its last
// status while it has a port group, and forgets the networks that are gone.
func (p *Publisher) remember(sts []publish.Status) {
	for _, s := range sts {
		if s.VLAN != 0 && s.State != publish.StateRetiring {
			p.last[s.VNI] = s.VLAN
		}
		if s.Ref != "" || s.State == publish.StateReady {
			p.prev[s.VNI] = s
		}
	}
	for vni := range p.prev {
		if !slices.ContainsFunc(sts, func(s publish.Status) bool { return s.VNI == vni }) {
			delete(p.prev, vni)
		}
	}
	for vni := range p.drift {
		if !slices.ContainsFunc(sts, func(s publish.Status) bool { return s.VNI == vni }) {
			delete(p.drift, vni)
		}
	}
}

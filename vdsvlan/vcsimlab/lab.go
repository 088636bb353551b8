package vcsimlab

import (
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	_ "github.com/vmware/govmomi/vapi/simulator" // tagging endpoints
)

// Lab is a running simulated vCenter.
type Lab struct {
	// URL is the endpoint clients use (https, /sdk path, no credentials).
	URL                *url.URL
	Username, Password string
	CAFile             string // PEM of the server certificate (self-signed)
	Thumbprint         string // SHA-1 thumbprint of the server certificate

	model   *simulator.Model
	server  *simulator.Server
	front   *front
	client  *govmomi.Client
	rest    *rest.Client
	tagMgr  *tags.Manager
	dc      *object.Datacenter
	folders *object.DatacenterFolders
	spec    Spec

	mu       sync.Mutex
	hosts    map[string]*object.HostSystem
	switches map[string]*object.DistributedVirtualSwitch
	pgs      map[string]types.ManagedObjectReference
	vms      map[string]*object.VirtualMachine
	tagIDs   map[string]string
	category string
}

// Start builds the inventory of spec and serves it over TLS on 127.0.0.1
// (listen may name host:port; empty picks a free port). dir receives the
// certificate file.
func Start(ctx context.Context, spec Spec, listen, dir string) (*Lab, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.Username == "" {
		spec.Username = "torstitch"
	}
	if spec.Password == "" {
		spec.Password = "vcsim-password"
	}
	if spec.TagCategory == "" {
		spec.TagCategory = "torstitch"
	}
	m := simulator.VPX()
	m.Datacenter, m.Host, m.Cluster, m.ClusterHost = 1, len(spec.Hosts), 0, 0
	m.Portgroup, m.Machine, m.Datastore, m.Autostart = 0, 0, 1, false
	if err := m.Create(); err != nil {
		return nil, fmt.Errorf("creating simulator model: %w", err)
	}
	m.Service.RegisterEndpoints = true
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(spec.Username, spec.Password)}
	m.Service.TLS = new(tls.Config)
	srv := m.Service.NewServer()
	l := &Lab{
		Username: spec.Username, Password: spec.Password,
		model: m, server: srv, spec: spec,
		hosts: map[string]*object.HostSystem{}, switches: map[string]*object.DistributedVirtualSwitch{},
		pgs: map[string]types.ManagedObjectReference{}, vms: map[string]*object.VirtualMachine{},
		tagIDs: map[string]string{},
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	f, err := startFront(listen, srv.URL.Host)
	if err != nil {
		l.Close()
		return nil, err
	}
	l.front = f
	l.URL = &url.URL{Scheme: "https", Host: f.addr, Path: "/sdk"}
	cert := srv.Certificate()
	sum := sha1.Sum(cert.Raw)
	var tp []string
	for _, b := range sum {
		tp = append(tp, fmt.Sprintf("%02X", b))
	}
	l.Thumbprint = strings.Join(tp, ":")
	l.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(l.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		l.Close()
		return nil, fmt.Errorf("writing certificate: %w", err)
	}
	if err := l.build(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Close stops the server and frees the model.
func (l *Lab) Close() {
	if l.front != nil {
		l.front.stop()
	}
	if l.client != nil {
		_ = l.client.Logout(context.Background())
	}
	l.server.Close()
	l.model.Remove()
}

// Stop makes the endpoint unreachable (connections refused, open ones cut),
// as if vCenter went down.
func (l *Lab) Stop() { l.front.stop() }

// Restart serves the endpoint again on the same address.
func (l *Lab) Restart() error { return l.front.start() }

func (l *Lab) build(ctx context.Context) error {
	u := *l.server.URL
	u.User = url.UserPassword(l.Username, l.Password)
	c, err := govmomi.NewClient(ctx, &u, true)
	if err != nil {
		return fmt.Errorf("admin client: %w", err)
	}
	l.client = c
	finder := find.NewFinder(c.Client, false)
	if l.dc, err = finder.DefaultDatacenter(ctx); err != nil {
		return err
	}
	finder.SetDatacenter(l.dc)
	if l.folders, err = l.dc.Folders(ctx); err != nil {
		return err
	}
	hosts, err := finder.HostSystemList(ctx, "*")
	if err != nil {
		return err
	}
	for i, h := range hosts {
		// vcsim's hosts have generated names and no Rename_Task: rename in process.
		name := l.spec.Hosts[i].Name
		l.update(l.model.Map().Get(h.Reference()), func() []types.PropertyChange {
			return []types.PropertyChange{{Name: "name", Val: name}, {Name: "summary.config.name", Val: name}}
		})
		hs := object.NewHostSystem(c.Client, h.Reference())
		l.hosts[l.spec.Hosts[i].Name] = hs
		if err := l.SetNeighbours(ctx, l.spec.Hosts[i].Name, l.spec.Hosts[i].NICs); err != nil {
			return err
		}
	}
	for _, sw := range l.spec.Switches {
		if err := l.addSwitch(ctx, sw); err != nil {
			return err
		}
	}
	l.rest = rest.NewClient(c.Client)
	if err := l.rest.Login(ctx, url.UserPassword(l.Username, l.Password)); err != nil {
		return fmt.Errorf("vAPI login: %w", err)
	}
	l.tagMgr = tags.NewManager(l.rest)
	if l.category, err = l.tagMgr.CreateCategory(ctx, &tags.Category{Name: l.spec.TagCategory, Cardinality: "MULTIPLE"}); err != nil {
		return fmt.Errorf("creating tag category: %w", err)
	}
	for _, pg := range l.spec.PortGroups {
		if err := l.AddPortGroup(ctx, pg); err != nil {
			return err
		}
	}
	return l.addVMs(ctx, l.spec.VMs)
}

// addSwitch creates a distributed switch and, in process, fills in what vcsim
// leaves out: config.host (members with their pNIC backing) and the PVLAN map.
func (l *Lab) addSwitch(ctx context.Context, sw SwitchSpec) error {
	spec := types.DVSCreateSpec{ConfigSpec: &types.VMwareDVSConfigSpec{DVSConfigSpec: types.DVSConfigSpec{Name: sw.Name}}}
	task, err := l.folders.NetworkFolder.CreateDVS(ctx, spec)
	if err != nil {
		return err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return fmt.Errorf("creating switch %s: %w", sw.Name, err)
	}
	dvs := object.NewDistributedVirtualSwitch(l.client.Client, info.Result.(types.ManagedObjectReference))
	l.switches[sw.Name] = dvs
	members := sw.Hosts
	if len(members) == 0 {
		for _, h := range l.spec.Hosts {
			members = append(members, h.Name)
		}
	}
	uplinks := sw.Uplinks
	if len(uplinks) == 0 {
		uplinks = []string{"vmnic0", "vmnic1"}
	}
	var reconf types.DVSConfigSpec
	var hostCfg []types.DistributedVirtualSwitchHostMember
	for _, name := range members {
		ref := l.hosts[name].Reference()
		backing := &types.DistributedVirtualSwitchHostMemberPnicBacking{}
		for _, u := range uplinks {
			backing.PnicSpec = append(backing.PnicSpec, types.DistributedVirtualSwitchHostMemberPnicSpec{PnicDevice: u})
		}
		reconf.Host = append(reconf.Host, types.DistributedVirtualSwitchHostMemberConfigSpec{
			Operation: string(types.ConfigSpecOperationAdd), Host: ref, Backing: backing})
		hostCfg = append(hostCfg, types.DistributedVirtualSwitchHostMember{
			Config: types.DistributedVirtualSwitchHostMemberConfigInfo{Host: &ref, Backing: backing}})
	}
	if err := wait(ctx)(dvs.Reconfigure(ctx, &reconf)); err != nil {
		return fmt.Errorf("adding hosts to %s: %w", sw.Name, err)
	}
	sim := l.model.Map().Get(dvs.Reference()).(*simulator.DistributedVirtualSwitch)
	l.update(sim, func() []types.PropertyChange {
		cfg := *sim.Config.(*types.VMwareDVSConfigInfo)
		cfg.Host = hostCfg
		cfg.PvlanConfig = nil
		for _, p := range sw.PVLANs {
			cfg.PvlanConfig = append(cfg.PvlanConfig, types.VMwareDVSPvlanMapEntry{
				PrimaryVlanId: p.Primary, SecondaryVlanId: p.Secondary, PvlanType: p.Type})
		}
		return []types.PropertyChange{{Name: "config", Val: &cfg}}
	})
	return nil
}

// update applies property changes to a simulator object in process, under
// its lock, and publishes them to property collectors.
func (l *Lab) update(obj mo.Reference, changes func() []types.PropertyChange) {
	sctx := l.model.Service.Context
	l.model.Map().WithLock(sctx, obj, func() {
		l.model.Map().Update(sctx, obj, changes())
	})
}

// SetNeighbours injects the LLDP/CDP answers of a host's uplinks.
func (l *Lab) SetNeighbours(ctx context.Context, host string, nics []NICSpec) error {
	h := l.hosts[host]
	if h == nil {
		return fmt.Errorf("unknown host %q", host)
	}
	var hs mo.HostSystem
	if err := h.Properties(ctx, h.Reference(), []string{"configManager.networkSystem"}, &hs); err != nil {
		return err
	}
	ns := l.model.Map().Get(*hs.ConfigManager.NetworkSystem).(*simulator.HostNetworkSystem)
	var hints []types.PhysicalNicHintInfo
	for _, n := range nics {
		hint := types.PhysicalNicHintInfo{Device: n.Device}
		if n.LLDP != nil {
			hint.LldpInfo = &types.LinkLayerDiscoveryProtocolInfo{
				ChassisId: "00:00:5e:00:53:01", PortId: n.LLDP.Port, TimeToLive: 120,
				Parameter: []types.KeyAnyValue{{Key: "System Name", Value: n.LLDP.Switch}},
			}
		}
		if n.CDP != nil {
			hint.ConnectedSwitchPort = &types.PhysicalNicCdpInfo{DevId: n.CDP.Switch, PortId: n.CDP.Port}
		}
		hints = append(hints, hint)
	}
	l.model.Map().WithLock(l.model.Service.Context, ns, func() {
		ns.QueryNetworkHintResponse.Returnval = hints
	})
	return nil
}

// wait returns a function waiting for a task: wait(ctx)(obj.Destroy(ctx)).
func wait(ctx context.Context) func(*object.Task, error) error {
	return func(t *object.Task, err error) error {
		if err != nil {
			return err
		}
		return t.Wait(ctx)
	}
}

var errUnknown = errors.New("unknown object")

package config

import (
	"fmt"

	"github.com/torstitch/torstitch/vdsvlan"
	"github.com/torstitch/torstitch/vdsvlan/publish"
	"github.com/torstitch/torstitch/vtep/l2"
)

// vcenterPublish checks the published-network keys (issue 17):
// vcenter.publish_switch, vcenter.vlan_pool and vcenter.publish[i].
func (k *checker) vcenterPublish(v *vdsvlan.Config) {
	if v.PublishSwitch == "" {
		if len(v.Publish) > 0 || v.VLANPool != "" {
			k.add("vcenter.publish_switch", "missing: publish and vlan_pool need the distributed switch the port groups are created on")
		}
	} else if err := checkText(v.PublishSwitch, 80); err != nil {
		k.add("vcenter.publish_switch", "%v", err)
	}
	if v.VLANPool != "" {
		if _, err := publish.ParsePool(v.VLANPool); err != nil {
			k.add("vcenter.vlan_pool", "%v", err)
		}
	}
	vnis, names, vlans := map[l2.VNI]string{}, map[string]string{}, map[l2.VLAN]string{}
	for i, n := range v.Publish {
		p := fmt.Sprintf("vcenter.publish[%d]", i)
		if err := n.VNI.Validate(); err != nil {
			k.add(p+".vni", "%v", err)
		} else if w, dup := vnis[n.VNI]; dup {
			k.add(p+".vni", "VNI %d is also published by %s", n.VNI, w)
		} else {
			vnis[n.VNI] = p
		}
		if err := publish.CheckName(n.Name); err != nil {
			k.add(p+".name", "%v", err)
		} else if w, dup := names[n.Name]; dup {
			k.add(p+".name", "%q is also the name of %s", n.Name, w)
		} else {
			names[n.Name] = p
		}
		switch {
		case n.VLAN == 0 && v.VLANPool == "":
			k.add(p, "no vlan, and no vcenter.vlan_pool to take one from")
		case n.VLAN == 0:
		case n.VLAN >= l2.MaxVLAN:
			k.add(p+".vlan", "VLAN %d out of range 1-%d", n.VLAN, l2.MaxVLAN-1)
		default:
			if w, dup := vlans[n.VLAN]; dup {
				k.add(p+".vlan", "VLAN %d is also asked for by %s", n.VLAN, w)
			} else {
				vlans[n.VLAN] = p
			}
		}
	}
}

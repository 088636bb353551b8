// Command torctl is the operator CLI of toragent: it binds VLANs on switch
// ports to VNIs and shows what the agent sees, through the agent's API only
// (see docs/torctl.md).
//
//	torctl bind vlan <VLAN> vni <VNI> --port SWITCH:PORT [--port ...]
//	torctl unbind vlan <VLAN> --port SWITCH:PORT [--port ...]
//	torctl show bindings|macs [--vni N]|switches|peers|vcenter [-o json|table]
//	torctl version
//	torctl completion bash|zsh|fish
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

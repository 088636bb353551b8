package testbed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const netnsDir = "/run/netns"

// ensureNetns creates the named network namespace unless it exists.
// It reports whether it created it.
func ensureNetns(name string) (bool, error) {
	if isNetns(name) {
		return false, nil
	}
	// A leftover file that is no namespace (crash between create and mount).
	_ = os.Remove(filepath.Join(netnsDir, name))
	errc := make(chan error, 1)
	go func() {
		// The thread switches namespace: lock it, and let it die rather
		// than return it to the scheduler if switching back fails.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if err != nil {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			errc <- fmt.Errorf("creating netns %s: %w", name, err)
			return
		}
		h.Close()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("returning from netns %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return false, err
	}
	return true, nil
}

// isNetns reports whether /run/netns/NAME is a mounted network namespace
// (and not a leftover empty file).
func isNetns(name string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(filepath.Join(netnsDir, name), &fs) == nil && fs.Type == unix.NSFS_MAGIC
}

// deleteNetns removes a named namespace; a missing one is not an error.
func deleteNetns(name string) error {
	p := filepath.Join(netnsDir, name)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting netns %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing netns %s: %w", name, err)
	}
	return nil
}

// nsHandle opens a namespace and a netlink handle inside it.
func nsHandle(name string) (netns.NsHandle, *netlink.Handle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return ns, nil, fmt.Errorf("opening netns %s: %w", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return ns, nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	return ns, h, nil
}

// netnsInode returns the inode that identifies the named namespace.
func netnsInode(name string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(netnsDir, name), &st); err != nil {
		return 0, fmt.Errorf("stat netns %s: %w", name, err)
	}
	return st.Ino, nil
}

// pidsInNetns lists the processes whose network namespace is the named one.
func pidsInNetns(name string) ([]int, error) {
	if !isNetns(name) {
		return nil, fmt.Errorf("%s is not a network namespace", name)
	}
	ino, err := netnsInode(name)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && st.Ino == ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killNetns ends every process in the named namespace: SIGTERM, then SIGKILL
// for what is left after grace.
func killNetns(ctx context.Context, name string, grace time.Duration) error {
	pids, err := pidsInNetns(name)
	if err != nil || len(pids) == 0 {
		return err
	}
	signalled := slices.Clone(pids)
	if grace > 0 {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(grace)
	for grace > 0 {
		pids, err = pidsInNetns(name)
		if err != nil || len(pids) == 0 {
			if err == nil {
				waitGone(ctx, signalled)
			}
			return err
		}
		if time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if pids, err = pidsInNetns(name); err != nil || len(pids) == 0 {
			if err == nil {
				waitGone(ctx, signalled)
			}
			return err
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("processes %v in netns %s survive SIGKILL", pids, name)
}

// waitGone waits (up to 5 s) until the processes have fully exited and been
// reaped: an exiting process leaves its namespace before its pid is free,
// and a restart script that checks a pid file must not see it alive.
func waitGone(ctx context.Context, pids []int) {
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for time.Now().Before(deadline) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err != nil {
				break
			}
			if sleepCtx(ctx, 20*time.Millisecond) != nil {
				return
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// socketIn opens an AF_INET datagram socket inside ns (for ethtool ioctls).
func socketIn(ns netns.NsHandle) (int, error) {
	type result struct {
		fd  int
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			c <- result{-1, fmt.Errorf("current netns: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			c <- result{-1, fmt.Errorf("entering netns: %w", err)}
			return
		}
		fd, serr := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err := netns.Set(orig); err != nil {
			if serr == nil {
				unix.Close(fd)
			}
			c <- result{-1, fmt.Errorf("leaving netns: %w", err)}
			return // thread stays locked and dies with the goroutine
		}
		runtime.UnlockOSThread()
		if serr != nil {
			serr = fmt.Errorf("socket: %w", serr)
		}
		c <- result{fd, serr}
	}()
	r := <-c
	return r.fd, r.err
}

const ethtoolSTXCSUM = 0x17 // ETHTOOL_STXCSUM

// txChecksumOff turns off TX checksum offload of iface in ns, as
// containerlab does for the veths it creates: a frame whose checksum the
// kernel left to "hardware" would otherwise reach an OVS userspace datapath
// unfinished and be dropped.
func txChecksumOff(ns netns.NsHandle, iface string) error {
	fd, err := socketIn(ns)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	value := struct{ cmd, data uint32 }{cmd: ethtoolSTXCSUM}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(ifr.name[:], iface)
	ifr.data = uintptr(unsafe.Pointer(&value))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&value)
	if errno != 0 {
		return fmt.Errorf("ethtool tx off %s: %w", iface, errno)
	}
	return nil
}

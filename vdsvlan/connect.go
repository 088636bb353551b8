package vdsvlan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/session/keepalive"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// connectTimeout bounds connecting and logging in; a server that accepts
// TCP but never answers must not hang the watcher.
const connectTimeout = 30 * time.Second

// keepAliveIdle is how long a session may sit idle before a keep-alive call.
const keepAliveIdle = 5 * time.Minute

// conn is one logged-in vCenter session.
type conn struct {
	vim  *vim25.Client
	rest *rest.Client // only in tag mode
}

// Error kinds reported in Status.Err, so operators see the cause at a glance.
var (
	ErrCertificate = errors.New("vCenter certificate not trusted")
	ErrLogin       = errors.New("vCenter login failed")
	ErrUnreachable = errors.New("vCenter unreachable")
)

// connect dials vCenter, verifies its certificate as configured and logs in.
func connect(ctx context.Context, cfg Config, log *slog.Logger) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()

	u, err := soap.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("vCenter url: %w", err)
	}
	u.User = nil
	if cfg.Insecure {
		log.Warn("vCenter certificate verification disabled (insecure: true)", "url", u.Redacted())
	}
	sc := soap.NewClient(u, cfg.Insecure)
	if cfg.CAFile != "" {
		if err := sc.SetRootCAs(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("vCenter ca_file: %w", err)
		}
	}
	if cfg.Thumbprint != "" {
		sc.SetThumbprint(u.Host, strings.ToUpper(cfg.Thumbprint))
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, classify(fmt.Errorf("connecting to %s: %w", u.Redacted(), err))
	}
	user, err := cfg.credentials()
	if err != nil {
		return nil, err
	}
	// Keep the session alive while idle (the handler starts on Login and
	// stops on Logout); an expired session surfaces as a NotAuthenticated
	// fault and the watcher logs in again.
	vc.RoundTripper = keepalive.NewHandlerSOAP(vc.RoundTripper, keepAliveIdle, nil)
	sm := session.NewManager(vc)
	if err := sm.Login(ctx, user); err != nil {
		return nil, classify(fmt.Errorf("logging in to %s as %q: %w", u.Redacted(), user.Username(), err))
	}
	c := &conn{vim: vc}
	if cfg.VNIPolicy.Mode == "tag" {
		rc := rest.NewClient(vc)
		if err := rc.Login(ctx, user); err != nil {
			c.close(ctx)
			return nil, classify(fmt.Errorf("logging in to the vAPI endpoint of %s: %w", u.Redacted(), err))
		}
		c.rest = rc
	}
	return c, nil
}

// close logs out, best effort.
func (c *conn) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if c.rest != nil {
		_ = c.rest.Logout(ctx)
	}
	_ = session.NewManager(c.vim).Logout(ctx)
}

// classify wraps err with one of the Err* kinds when it recognises the cause.
func classify(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case soap.IsCertificateUntrusted(err):
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	case isLoginFault(err):
		return fmt.Errorf("%w: invalid username or password: %w", ErrLogin, err)
	}
	var nerr net.Error
	var uerr *url.Error
	if errors.As(err, &nerr) || errors.As(err, &uerr) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

func isLoginFault(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if isLoginFault1(e) {
			return true
		}
	}
	return false
}

func isLoginFault1(err error) bool {
	if soap.IsSoapFault(err) {
		switch soap.ToSoapFault(err).VimFault().(type) {
		case types.InvalidLogin, *types.InvalidLogin:
			return true
		}
	}
	if soap.IsVimFault(err) {
		if _, ok := soap.ToVimFault(err).(*types.InvalidLogin); ok {
			return true
		}
	}
	return rest.IsStatusError(err, 401)
}

// isNotAuthenticated reports a session that expired or was terminated.
func isNotAuthenticated(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if soap.IsSoapFault(e) {
			switch soap.ToSoapFault(e).VimFault().(type) {
			case types.NotAuthenticated, *types.NotAuthenticated:
				return true
			}
		}
	}
	return false
}

// Command toragent is torstitch's per-switch-pair daemon.
//
//	toragent --config /etc/torstitch/toragent.yaml
//	toragent --config FILE --check-config
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/torstitch/torstitch/cmd/internal/cli"

	"github.com/torstitch/torstitch/vtep/agent"
	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	root := newCommand(&o)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{cli.SingleDashHint(c, args, err)}
	})
	ran := false
	root.RunE = func(*cobra.Command, []string) error { ran = true; return nil }
	if err := root.Execute(); err != nil {
		fmt.Fprintf(stderr, "toragent: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) || !ran {
			return 2
		}
		return 1
	}
	if !ran { // --help, --version, gen-docs
		return 0
	}
	return runAgent(o, stdout, stderr)
}

// options are toragent's flags.
type options struct {
	config string
	check  bool
}

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func newCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "toragent [--config FILE] [--check-config]",
		Short: "torstitch agent: VLANs of vSphere clusters onto VXLAN/EVPN through hardware_vtep ToR switches",
		Long: `toragent is torstitch's daemon, one per ToR switch pair. It learns port-group VLANs from
vCenter, takes static bindings from its configuration and from torctl, writes hardware_vtep
rows into both switches' OVSDB databases, and exchanges EVPN routes through an embedded BGP
speaker. The configuration (YAML, unknown keys are errors) is described in
docs/operations.md; torctl(1) talks to the API it serves.

It stops on SIGINT or SIGTERM and leaves the switches forwarding.`,
		Example: `  toragent --config /etc/torstitch/toragent.yaml --check-config
  toragent --config /etc/torstitch/toragent.yaml`,
		Args:                  cobra.NoArgs,
		SilenceUsage:          true,
		SilenceErrors:         true,
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVar(&o.config, "config", "/etc/torstitch/toragent.yaml", "configuration `FILE` (YAML)")
	cmd.Flags().BoolVar(&o.check, "check-config", false, "validate the configuration and the files it names (TLS, credentials) and exit")
	cli.Setup(cmd, "8")
	cmd.CompletionOptions.HiddenDefaultCmd = true
	return cmd
}

func runAgent(o options, stdout, stderr io.Writer) int {
	cfgPath, check := &o.config, &o.check
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "toragent: %v\n", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "toragent: warning: %s\n", w)
	}
	log := newLogger(stderr, cfg.Agent.LogFormat, cfg.Agent.LogLevel)
	if err := agent.Check(cfg); err != nil {
		fmt.Fprintf(stderr, "toragent: %v\n", err)
		return 1
	}
	token := ""
	if cfg.Agent.TokenFile != "" {
		if token, err = api.ReadTokenFile(cfg.Agent.TokenFile); err != nil {
			fmt.Fprintf(stderr, "toragent: agent.token_file: %v\n", err)
			return 1
		}
	}
	if *check {
		fmt.Fprintf(stdout, "%s: configuration OK (%d switches, bgp %v, vcenter %v, %d static bindings)\n",
			*cfgPath, len(cfg.Switches), cfg.BGP != nil, cfg.VCenter != nil, len(cfg.Bindings))
		return 0
	}
	a, err := agent.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "toragent: %v\n", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var tlsFiles *api.TLSFiles
	if t := cfg.Agent.APITLS; t != nil {
		tlsFiles = &api.TLSFiles{Cert: t.Cert, Key: t.Key, ClientCA: t.ClientCA}
	}
	ln, err := api.Listen(ctx, cfg.Agent.API, tlsFiles)
	if err != nil {
		fmt.Fprintf(stderr, "toragent: API %s: %v\n", cfg.Agent.API, err)
		return 1
	}
	errc := make(chan error, 3)
	go func() { errc <- api.ServeListener(ctx, ln, api.NewHandler(a, log, token)) }()
	if cfg.Agent.Metrics != "" {
		srv, err := metricsServer(cfg.Agent.Metrics, cfg.Agent.MetricsTLS, promhttp.HandlerFor(a.Metrics(), promhttp.HandlerOpts{}))
		if err != nil {
			fmt.Fprintf(stderr, "toragent: agent.metrics_tls: %v\n", err)
			return 1
		}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		go func() {
			var err error
			if srv.TLSConfig != nil {
				err = srv.ListenAndServeTLS("", "")
			} else {
				err = srv.ListenAndServe()
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics %s: %w", cfg.Agent.Metrics, err)
			}
		}()
	}
	go func() { errc <- a.Run(ctx) }()
	log.Info("API listening", "addr", cfg.Agent.API, "metrics", cfg.Agent.Metrics)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			log.Error("fatal", "err", err)
			stop()
			return 1
		}
	}
	// Wait briefly for the agent's graceful stop.
	select {
	case <-errc:
	case <-time.After(10 * time.Second):
	}
	return 0
}

// metricsServer serves /metrics on addr, over HTTPS when t is set (with
// client certificates required when t.ClientCA is set).
func metricsServer(addr string, t *config.APITLS, h http.Handler) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	if t == nil {
		return srv, nil
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, err
	}
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca %s: no PEM certificates", t.ClientCA)
		}
		srv.TLSConfig.ClientCAs = pool
		srv.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return srv, nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	lv := slog.LevelInfo
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Command toragent is torstitch's per-switch-pair daemon.
//
//	toragent --config /etc/torstitch/toragent.yaml
//	toragent --config FILE --check-config
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/torstitch/torstitch/vtep/agent"
	"github.com/torstitch/torstitch/vtep/agent/config"
	"github.com/torstitch/torstitch/vtep/api"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("toragent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/torstitch/toragent.yaml", "configuration file (YAML)")
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "toragent", api.BuildVersion())
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "toragent: %v\n", err)
		return 1
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
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(a.Metrics(), promhttp.HandlerOpts{}))
		srv := &http.Server{Addr: cfg.Agent.Metrics, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
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

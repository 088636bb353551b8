package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/torstitch/torstitch/cmd/internal/cli"
	"github.com/torstitch/torstitch/vtep/api"
	"github.com/torstitch/torstitch/vtep/buildinfo"
)

// EnvSocket overrides the default API socket.
const EnvSocket = "TORSTITCH_SOCKET"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed: bad value, agent refused or unreachable
	exitUsage = 2 // the command line is malformed
)

// exitErr carries the exit code of an error.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

// usageErr reports a malformed command line (exit code 2).
func usageErr(format string, a ...any) error {
	return &exitErr{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// action marks every error of a command's own work as exit code 1 unless it
// is a usage error. Errors cobra raises before running a command (unknown
// command or flag, wrong arguments) stay unmarked and exit with 2.
func action(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var ee *exitErr
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return &exitErr{code: exitError, err: err}
	}
}

// globals are the flags that say how to reach the agent.
type globals struct {
	stdout   io.Writer
	getenv   func(string) string
	socket   string
	server   string
	token    string
	caFile   string
	certFile string
	keyFile  string
	timeout  time.Duration
}

// client connects to the agent chosen by the flags. The token comes from
// --token-file or the environment, never from the command line.
func (g *globals) client(cmd *cobra.Command) (*api.Client, error) {
	opts := []api.ClientOption{api.WithTimeout(g.timeout)}
	if g.token != "" {
		opts = append(opts, api.WithTokenFile(g.token))
	} else if tok := g.getenv(api.EnvToken); tok != "" {
		opts = append(opts, api.WithToken(tok))
	}
	if g.caFile != "" {
		opts = append(opts, api.WithCAFile(g.caFile))
	}
	if g.certFile != "" || g.keyFile != "" {
		opts = append(opts, api.WithClientCert(g.certFile, g.keyFile))
	}
	addr := g.socket
	if g.server != "" {
		if cmd.Flags().Changed("socket") {
			return nil, usageErr("--socket and --server exclude each other")
		}
		addr = g.server
	}
	return api.NewClient(addr, opts...)
}

// run executes torctl with args and returns the exit code. Errors are
// printed as one line "torctl: MESSAGE" on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	root := newRoot(stdout, stderr, getenv)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitUsage
	var ee *exitErr
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(stderr, "torctl: %s\n", oneLine(err.Error()))
	return code
}

// oneLine folds a message onto one line, turning cobra's suggestion block
// into "(did you mean X?)".
func oneLine(msg string) string {
	if head, sugg, ok := strings.Cut(msg, "\n\nDid you mean this?\n"); ok {
		msg = fmt.Sprintf("%s (did you mean %s?)", head, strings.Join(strings.Fields(sugg), " or "))
	}
	return strings.Join(strings.Fields(msg), " ")
}

func newRoot(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	g := &globals{stdout: stdout, getenv: getenv}
	root := &cobra.Command{
		Use:   "torctl",
		Short: "Bind VLANs to VNIs and inspect toragent",
		Long: "torctl talks to toragent's API: by default the unix socket " + api.DefaultSocket +
			" ($" + EnvSocket + " overrides it), or --server https://HOST:PORT with a bearer token from --token-file or $" +
			api.EnvToken + ".",
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageErr("missing command: bind, unbind, show, version or completion (see torctl --help)")
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr("%v", err) })
	socket := api.DefaultSocket
	if s := getenv(EnvSocket); s != "" {
		socket = s
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.socket, "socket", socket, "agent API unix socket ($"+EnvSocket+")")
	pf.StringVar(&g.server, "server", "", "agent API URL instead of the socket, https://HOST:PORT")
	pf.StringVar(&g.token, "token-file", "", "file holding the API bearer token (default: $"+api.EnvToken+")")
	pf.StringVar(&g.caFile, "ca-file", "", "CA certificates (PEM) to verify the --server certificate")
	pf.StringVar(&g.certFile, "cert-file", "", "client certificate (PEM) for --server, if the agent requires one")
	pf.StringVar(&g.keyFile, "key-file", "", "key (PEM) of --cert-file")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "bound on each API request")

	root.AddCommand(bindCmd(g), unbindCmd(g), showCmd(g), networkCmd(g), versionCmd(g, stderr), completionCmd(root))
	cli.Setup(root, "1")
	return root
}

// output is the -o flag of commands that print agent state.
type output struct{ format string }

func (o *output) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVarP(&o.format, "output", "o", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func (o *output) check() error {
	switch o.format {
	case "table", "json":
		return nil
	}
	return usageErr("-o %q: want table or json", o.format)
}

func versionCmd(g *globals, stderr io.Writer) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of torctl, and of the agent when it answers",
		Long: "Print torctl's own version, then the agent's when it answers. When the agent does not\n" +
			"answer, its error goes to stderr and the exit code is still 0.",
		Args: cobra.NoArgs,
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			mine := buildinfo.Get()
			agent, agentErr := agentVersion(cmd, g)
			if agentErr != nil {
				fmt.Fprintf(stderr, "torctl: agent: %s\n", oneLine(agentErr.Error()))
			}
			if out.format == "json" {
				return writeJSON(g.stdout, struct {
					Torctl      string         `json:"torctl"`
					TorctlBuild buildinfo.Info `json:"torctl_build"`
					Toragent    *api.Version   `json:"toragent,omitempty"`
				}{mine.Version, mine, agent})
			}
			fmt.Fprintf(g.stdout, "torctl    %s\n", mine)
			if agent != nil {
				fmt.Fprintf(g.stdout, "toragent  %s (agent %s)\n", agent.Version, agent.Agent)
			}
			return nil
		}),
	}
	out.register(cmd)
	return cmd
}

// agentVersion asks the agent for its version.
func agentVersion(cmd *cobra.Command, g *globals) (*api.Version, error) {
	c, err := g.client(cmd)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	v, err := c.Version(cmd.Context())
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func completionCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: "Print a shell completion script. For example:\n" +
			"  torctl completion bash > /etc/bash_completion.d/torctl\n" +
			"  torctl completion zsh > \"${fpath[1]}/_torctl\"\n" +
			"  torctl completion fish > ~/.config/fish/completions/torctl.fish",
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || !slices.Contains([]string{"bash", "zsh", "fish"}, args[0]) {
				return usageErr("usage: torctl completion bash|zsh|fish")
			}
			return nil
		},
		RunE: action(func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(w, true)
			case "zsh":
				return root.GenZshCompletion(w)
			default:
				return root.GenFishCompletion(w, true)
			}
		}),
	}
}

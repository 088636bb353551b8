// Package cli holds what the torstitch commands share on top of cobra: the
// --version flag from one build-info source (vtep/buildinfo) and a hidden
// "gen-docs" command that writes man pages and shell completions (`make
// docs`, the Debian package).
package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/torstitch/torstitch/vtep/buildinfo"
)

// GenDocsCmd is the name of the hidden command that writes documentation.
const GenDocsCmd = "gen-docs"

// Setup gives root the conventions every torstitch command shares:
// `--version` printing "NAME VERSION (GOVERSION, revision REV)" and the
// hidden gen-docs command.
// manSection is "1" for user commands and "8" for daemons.
func Setup(root *cobra.Command, manSection string) {
	root.Version = buildinfo.Get().String()
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.InitDefaultVersionFlag() // now, so that man pages list it
	root.DisableAutoGenTag = true // reproducible man pages
	root.AddCommand(genDocsCmd(root, manSection))
}

func genDocsCmd(root *cobra.Command, section string) *cobra.Command {
	var man, completions string
	cmd := &cobra.Command{
		Use:    GenDocsCmd + " --man DIR --completions DIR",
		Short:  "Write man pages and bash, zsh and fish completions",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if man == "" && completions == "" {
				return errors.New("--man DIR and/or --completions DIR")
			}
			if man != "" {
				if err := GenMan(root, section, man); err != nil {
					return err
				}
			}
			if completions != "" {
				return GenCompletions(root, completions)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&man, "man", "", "directory for the man pages (NAME.SECTION, NAME-SUB.SECTION)")
	cmd.Flags().StringVar(&completions, "completions", "", "directory for bash/NAME, zsh/_NAME and fish/NAME.fish")
	return cmd
}

// GenMan writes one man page per visible command into dir. The date is
// $SOURCE_DATE_EPOCH when set (reproducible builds), else today.
func GenMan(root *cobra.Command, section, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			date = time.Unix(n, 0).UTC()
		}
	}
	hdr := &doc.GenManHeader{
		Title:   strings.ToUpper(root.Name()),
		Section: section,
		Source:  "torstitch " + buildinfo.Version(),
		Manual:  "torstitch",
		Date:    &date,
	}
	if err := doc.GenManTree(root, hdr, dir); err != nil {
		return fmt.Errorf("man pages of %s: %w", root.Name(), err)
	}
	return nil
}

// GenCompletions writes the bash, zsh and fish completion scripts of root
// under dir, in the layout of the Debian/systemd completion directories.
func GenCompletions(root *cobra.Command, dir string) error {
	name := root.Name()
	files := []struct {
		path string
		gen  func(f *os.File) error
	}{
		{filepath.Join(dir, "bash", name), func(f *os.File) error { return root.GenBashCompletionV2(f, true) }},
		{filepath.Join(dir, "zsh", "_"+name), func(f *os.File) error { return root.GenZshCompletion(f) }},
		{filepath.Join(dir, "fish", name+".fish"), func(f *os.File) error { return root.GenFishCompletion(f, true) }},
	}
	for _, fl := range files {
		if err := os.MkdirAll(filepath.Dir(fl.path), 0o755); err != nil {
			return err
		}
		f, err := os.Create(fl.path)
		if err != nil {
			return err
		}
		err = fl.gen(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", fl.path, err)
		}
	}
	return nil
}

// SingleDashHint turns pflag's confusing answer to a Go-style long flag
// ("-config": unknown shorthand flag 'c') into a hint to use two dashes.
// Use it as the root's flag error function, wrapped as the command needs.
func SingleDashHint(cmd *cobra.Command, args []string, err error) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if cmd.Flags().Lookup(name) != nil {
				return fmt.Errorf("%v (long flags take two dashes: -%s)", err, a)
			}
		}
	}
	return err
}

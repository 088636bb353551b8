// Package dist holds the packaging of torstitch: the nfpm configuration of
// the Debian package (nfpm.yaml, `make deb`), the systemd units of toragent
// and torswitch (systemd/), an example configuration (toragent.yaml), the
// torswitch environment file and the package scripts. Its test builds the
// package and installs it into a clean root.
package dist

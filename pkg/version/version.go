// Package version holds the build's version strings, set with -ldflags at link time.
package version

// Version is ketch's own version.
var Version = "v0.0.0-dev"

// GitCommit is the commit the binary was built from.
var GitCommit = "unknown"

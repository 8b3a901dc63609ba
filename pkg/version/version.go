// Package version holds the release and source revision a binary was built from. `make build`
// and `make image` stamp both with -ldflags -X from the VERSION file and git; a plain
// `go build` leaves the defaults, which say so.
package version

import "fmt"

// Version is the release, as in the VERSION file and the image tag.
var Version = "0.0.0-dev"

// Revision is the git commit the binary was built from, with "-dirty" when the work tree had
// changes.
var Revision = "unknown"

// String is the one-line form that `quorumguard --version` prints.
func String() string {
	return fmt.Sprintf("quorumguard %s (revision %s)", Version, Revision)
}

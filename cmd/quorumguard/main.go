// Command quorumguard keeps an etcd-backed control plane quorate while its machines are replaced.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "quorumguard: the controller is being built")
	os.Exit(1)
}

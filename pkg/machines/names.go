package machines

import (
	"fmt"
	"strings"
)

// randomAlphabet is the alphabet of k8s.io/apimachinery/pkg/util/rand.String: no vowels, so
// no word such as "master" or "infra" looks generated.
const randomAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// randomLen is the length of the random part of a generated name.
const randomLen = 5

// namePrefix returns the prefix of new Machine names: the ControlPlaneMachineSet's
// machineNamePrefix when set, else the prefix of from (see the package documentation).
func namePrefix(machineNamePrefix, from string) string {
	if machineNamePrefix != "" {
		return machineNamePrefix
	}
	parts := strings.Split(from, "-")
	switch {
	case len(parts) >= 3 && generated(parts[len(parts)-2]):
		return strings.Join(parts[:len(parts)-2], "-")
	case len(parts) >= 2:
		return strings.Join(parts[:len(parts)-1], "-")
	}
	return from
}

func generated(part string) bool {
	if len(part) != randomLen {
		return false
	}
	for _, c := range part {
		if !strings.ContainsRune(randomAlphabet, c) {
			return false
		}
	}
	return true
}

// machineName is <prefix>-<random>-<index>.
func machineName(prefix, random string, index int) string {
	return fmt.Sprintf("%s-%s-%d", prefix, random, index)
}

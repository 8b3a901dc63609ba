package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/quorumguard/quorumguard/test/framework"
)

// snapshotLine is a commented line of the Deployment's opt-in snapshot block.
var snapshotLine = regexp.MustCompile(`^(\s*)# (\s*(- --snapshot-|- name: snapshots$|mountPath: /var/lib/quorumguard/snapshots$|persistentVolumeClaim:$|claimName: quorumguard-snapshots$).*)$`)

// TestManifestsSnapshotBlockWorksUncommented: the Deployment ships --snapshot-dir commented
// out (it needs ReadWriteMany storage not every cluster has). Uncommented as its comment
// says, the block must still be right: flags the binary takes and accepts, the directory
// mounted from the claim defined beside it, ReadWriteMany, and a budget that fits the claim.
func TestManifestsSnapshotBlockWorksUncommented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "manifests", "03-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	trailer := false
	uncommented := 0
	for _, l := range strings.Split(string(raw), "\n") {
		if l == "# ---" {
			trailer = true
		}
		switch m := snapshotLine.FindStringSubmatch(l); {
		case trailer && strings.HasPrefix(l, "# "):
			l = strings.TrimPrefix(l, "# ")
			uncommented++
		case m != nil:
			l = m[1] + m[2]
			uncommented++
		}
		lines = append(lines, l)
	}
	if uncommented < 8 {
		t.Fatalf("found %d commented snapshot lines in manifests/03-deployment.yaml; the opt-in block is gone or moved", uncommented)
	}
	var dep *appsv1.Deployment
	var pvc *corev1.PersistentVolumeClaim
	for _, doc := range strings.Split(strings.Join(lines, "\n"), "\n---\n") {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("the uncommented manifest does not parse: %v\n%s", err, doc)
		}
		switch meta.Kind {
		case "Deployment":
			dep = &appsv1.Deployment{}
			err = yaml.UnmarshalStrict([]byte(doc), dep)
		case "PersistentVolumeClaim":
			pvc = &corev1.PersistentVolumeClaim{}
			err = yaml.UnmarshalStrict([]byte(doc), pvc)
		}
		if err != nil {
			t.Fatalf("uncommented %s: %v", meta.Kind, err)
		}
	}
	if dep == nil || pvc == nil {
		t.Fatalf("uncommented, the file holds Deployment %v and PersistentVolumeClaim %v; want both", dep != nil, pvc != nil)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	fs, o := controllerFlags()
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("the uncommented args do not parse: %v", err)
	}
	if o.snapshotDir == "" {
		t.Fatal("uncommented, the Deployment sets no --snapshot-dir")
	}
	mount := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == o.snapshotDir })
	if mount < 0 {
		t.Fatalf("--snapshot-dir %s is not a mounted volume", o.snapshotDir)
	}
	vol := slices.IndexFunc(dep.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mount].Name })
	if vol < 0 || dep.Spec.Template.Spec.Volumes[vol].PersistentVolumeClaim == nil ||
		dep.Spec.Template.Spec.Volumes[vol].PersistentVolumeClaim.ClaimName != pvc.Name || pvc.Namespace != dep.Namespace {
		t.Fatalf("the snapshot mount %q is not the claim %s/%s defined beside the Deployment", c.VolumeMounts[mount].Name, pvc.Namespace, pvc.Name)
	}
	if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteMany) {
		t.Errorf("claim access modes %v: both replicas may lead, so it must be ReadWriteMany", pvc.Spec.AccessModes)
	}
	budget, err := resource.ParseQuantity(o.snapshotBudget)
	if err != nil {
		t.Fatal(err)
	}
	if size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; budget.Sign() <= 0 || budget.Cmp(size) >= 0 {
		t.Errorf("--snapshot-budget %s must be set and below the claim's %s (one snapshot is written beside those kept)", budget.String(), size.String())
	}
	// The flags are accepted as the binary would accept them, the directory being writable.
	o.snapshotDir = t.TempDir()
	if err := o.validate(); err != nil {
		t.Errorf("the uncommented args are refused: %v", err)
	}
}

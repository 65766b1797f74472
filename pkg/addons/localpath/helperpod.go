package localpath

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// helperOp is what a helper pod does to a volume's directory.
type helperOp string

const (
	opCreate helperOp = "create"
	opDelete helperOp = "delete"
)

const (
	// helperRoot is where a helper pod mounts the node's storage directory.
	helperRoot = "/storage"
	// helperTimeout bounds a helper pod's run, from creation to exit; the kubelet enforces it
	// too, so a helper left behind by a provisioner that died does not run for ever.
	helperTimeout = 2 * time.Minute
	// maxPodName is the longest name a pod may have and keep a valid hostname label.
	maxPodName = 63
)

// helperPodName names the helper pod for op on volume. Volumes this provisioner makes have
// names of 40 characters, which fit; any other is hashed to fit.
func helperPodName(op helperOp, volume string) string {
	name := "helper-" + volume + "-" + string(op)
	if len(name) <= maxPodName {
		return name
	}
	sum := sha256.Sum256([]byte(volume))
	return "helper-" + hex.EncodeToString(sum[:16]) + "-" + string(op)
}

// helperPod is the pod that performs op on dir, a volume's directory on node: it mounts the
// directory's parent, the node's storage directory, and runs the local-path-helper role of
// image on it.
func helperPod(op helperOp, volume, node, dir, image, namespace string) *corev1.Pod {
	hostPathType := corev1.HostPathDirectoryOrCreate
	// The helper runs as root, which owns the storage directory, so making a directory in it
	// and chmod-ing that needs no capability. Deleting does: the volume's pods may have left
	// files owned by other users in directories closed to others (DAC_OVERRIDE), some with the
	// sticky bit (FOWNER).
	var add []corev1.Capability
	if op == opDelete {
		add = []corev1.Capability{"DAC_OVERRIDE", "FOWNER"}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      helperPodName(op, volume),
			Namespace: namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":       "local-path-helper",
				"app.kubernetes.io/managed-by": component,
			},
		},
		Spec: corev1.PodSpec{
			// Set directly, the node runs the pod without the scheduler: the directory must be
			// on exactly this node, whatever its taints or free resources.
			NodeName:                     node,
			Tolerations:                  []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			RestartPolicy:                corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:        ptr.To(int64(helperTimeout / time.Second)),
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			Containers: []corev1.Container{{
				Name:            "helper",
				Image:           image,
				ImagePullPolicy: corev1.PullNever,
				Args: []string{"local-path-helper", string(op),
					"--dir", path.Join(helperRoot, filepath.Base(dir)), "--root", helperRoot},
				// The helper's error, on stderr, becomes the termination message the
				// provisioner puts into its event.
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("10m"),
						corev1.ResourceMemory: resource.MustParse("16Mi"),
					},
					Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
				},
				SecurityContext: &corev1.SecurityContext{
					RunAsUser:                ptr.To(int64(0)),
					RunAsGroup:               ptr.To(int64(0)),
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: add},
					SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "storage", MountPath: helperRoot}},
			}},
			Volumes: []corev1.Volume{{
				Name: "storage",
				VolumeSource: corev1.VolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: filepath.Dir(dir), Type: &hostPathType},
				},
			}},
		},
	}
}

// helperWaitingFailures are reasons a helper container waits for that do not pass by
// themselves: waiting the full timeout for them would only delay the event that explains them.
var helperWaitingFailures = map[string]bool{
	"ErrImageNeverPull":          true,
	"InvalidImageName":           true,
	"CreateContainerConfigError": true,
}

// helperResult reads a helper pod's status: done once it has succeeded or failed, with an
// error saying why it failed.
func helperResult(pod *corev1.Pod) (done bool, err error) {
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return true, nil
	case corev1.PodFailed:
		return true, fmt.Errorf("helper pod %s/%s failed: %s", pod.Namespace, pod.Name, helperFailure(pod))
	}
	for _, s := range pod.Status.ContainerStatuses {
		if w := s.State.Waiting; w != nil && helperWaitingFailures[w.Reason] {
			return true, fmt.Errorf("helper pod %s/%s cannot start: %s: %s", pod.Namespace, pod.Name, w.Reason, w.Message)
		}
	}
	return false, nil
}

// helperFailure is the best explanation a failed helper pod offers: its container's
// termination message (the helper's error), else the pod's own reason, such as the kubelet
// refusing it or its deadline passing.
func helperFailure(pod *corev1.Pod) string {
	for _, s := range pod.Status.ContainerStatuses {
		if t := s.State.Terminated; t != nil {
			if msg := strings.TrimSpace(t.Message); msg != "" {
				return msg
			}
			return fmt.Sprintf("%s, exit code %d", t.Reason, t.ExitCode)
		}
	}
	if pod.Status.Reason != "" || pod.Status.Message != "" {
		return strings.TrimSpace(pod.Status.Reason + ": " + pod.Status.Message)
	}
	return "no reason given"
}

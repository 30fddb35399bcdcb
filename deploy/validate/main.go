// Command validate checks deploy/k8s manifests against the Kubernetes API types: every field
// must exist in its kind's schema (strict decoding), so typos and misplaced keys fail.
// Run: cd deploy/validate && go run . ../k8s/syndic.yaml ../k8s/syndic-split.yaml
package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	failed := false
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			if len(strings.TrimSpace(string(doc))) == 0 {
				continue
			}
			var meta struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				fmt.Printf("%s document %d: %v\n", path, i+1, err)
				failed = true
				continue
			}
			var target interface{}
			switch meta.Kind {
			case "ConfigMap":
				target = &corev1.ConfigMap{}
			case "Deployment":
				target = &appsv1.Deployment{}
			case "StatefulSet":
				target = &appsv1.StatefulSet{}
			case "Service":
				target = &corev1.Service{}
			case "PodDisruptionBudget":
				target = &policyv1.PodDisruptionBudget{}
			case "ServiceMonitor":
				target = &monitoringv1.ServiceMonitor{}
			default:
				fmt.Printf("%s document %d: kind %q has no schema here\n", path, i+1, meta.Kind)
				failed = true
				continue
			}
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				fmt.Printf("%s document %d (%s): %v\n", path, i+1, meta.Kind, err)
				failed = true
				continue
			}
			fmt.Printf("%s document %d (%s): ok\n", path, i+1, meta.Kind)
		}
	}
	if failed {
		os.Exit(1)
	}
}

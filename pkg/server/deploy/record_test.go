package deploy

import (
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestRecordName(t *testing.T) {
	hashed := regexp.MustCompile(`^ketch-manifest-my-app-yaml-[0-9a-f]{10}$`)
	for file, want := range map[string]string{
		"coredns.yaml":                     "ketch-manifest-coredns-yaml",
		"metrics-server.yml":               "ketch-manifest-metrics-server-yml",
		"00-namespaces.yaml":               "ketch-manifest-00-namespaces-yaml",
		"local-storage.yaml":               "ketch-manifest-local-storage-yaml",
		"my_app.yaml":                      "",
		"My-App.yaml":                      "",
		"my.app.yaml":                      "",
		"my app.yaml":                      "",
		"my-app.yaml":                      "ketch-manifest-my-app-yaml",
		"my-app-yaml.yml":                  "ketch-manifest-my-app-yaml-yml",
		"the-ünïcode.yaml":                 "",
		strings.Repeat("a", 240) + ".yaml": "",
		"x.yaml":                           "ketch-manifest-x-yaml",
		"x-yaml.yml":                       "ketch-manifest-x-yaml-yml",
		"x.yml":                            "ketch-manifest-x-yml",
		"UPPER.YAML.yaml":                  "",
		"-leading-dash.yaml":               "ketch-manifest--leading-dash-yaml",
		"trailing-dash-.yaml":              "ketch-manifest-trailing-dash--yaml",
	} {
		got := RecordName(file)
		if want != "" && got != want {
			t.Errorf("RecordName(%q) = %q, want %q", file, got, want)
		}
		if want == "" && strings.HasPrefix(file, "my") && !hashed.MatchString(got) {
			t.Errorf("RecordName(%q) = %q, want ketch-manifest-my-app-yaml-<hash>", file, got)
		}
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("RecordName(%q) = %q: %v", file, got, errs)
		}
	}
}

func TestRecordNameUnique(t *testing.T) {
	long := strings.Repeat("a", 250)
	files := []string{
		"my-app.yaml", "my_app.yaml", "my.app.yaml", "My-App.yaml", "my-app.yml", "my-app-yaml.yaml",
		"a.b.yaml", "a-b.yaml", "a_b.yaml", "a-b.yml", "a.b.yml",
		long + ".yaml", long + ".yml", long[1:] + ".yaml", long + "b.yaml", long[5:] + "bb.yaml",
	}
	seen := map[string]string{}
	for _, f := range files {
		name := RecordName(f)
		if other, ok := seen[name]; ok {
			t.Errorf("%q and %q share record %q", f, other, name)
		}
		seen[name] = f
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("RecordName(%q) = %q: %v", f, name, errs)
		}
		if RecordName(f) != name {
			t.Errorf("RecordName(%q) is not stable", f)
		}
	}
}

// Package k8s holds mailshift's Kubernetes manifests; its test checks that
// they agree with the binaries: the ConfigMap is a configuration the worker
// accepts, every secret it names is mounted or injected from a key the
// Secret has, ports, probes and selectors line up, and the image's static
// build works.
package k8s

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mailshift/mailshift/internal/config"
)

type doc = map[string]any

// load reads every document of a manifest file.
func load(t *testing.T, name string) []doc {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []doc
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs = append(docs, d)
	}
}

// get walks a path of keys (string) and indexes (int).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(doc)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func one(t *testing.T, file string) doc {
	t.Helper()
	docs := load(t, file)
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents, want 1", file, len(docs))
	}
	return docs[0]
}

func TestManifestsAgreeWithTheWorker(t *testing.T) {
	kust := one(t, "kustomization.yaml")
	listed := map[string]bool{}
	for _, r := range list(kust, "resources") {
		listed[r.(string)] = true
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		load(t, f) // every file parses
		if !notListed[f] && !listed[f] {
			t.Errorf("%s is not listed in kustomization.yaml", f)
		}
	}
	for f := range listed {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", f, err)
		}
	}

	secret := one(t, "secret.example.yaml")
	secretKeys := get(secret, "stringData").(doc)
	dep := one(t, "deployment.yaml")
	pod := get(dep, "spec", "template", "spec")
	ctr := get(pod, "containers", 0)
	labels := get(dep, "spec", "template", "metadata", "labels").(doc)
	if !reflect.DeepEqual(get(dep, "spec", "selector", "matchLabels"), labels) {
		t.Errorf("deployment selector %v does not match the pod labels %v", get(dep, "spec", "selector", "matchLabels"), labels)
	}

	// Environment from the secret: keys that exist.
	env := map[string]string{}
	for _, e := range list(ctr, "env") {
		name := str(e, "name")
		if key := str(e, "valueFrom", "secretKeyRef", "key"); key != "" {
			v, ok := secretKeys[key]
			if !ok {
				t.Errorf("env %s reads secret key %q, which the secret does not have", name, key)
			}
			env[name], _ = v.(string)
		}
	}

	// Mounts: the config file and the secret files.
	mounts := map[string]string{} // volume name -> mount path
	var configPath string
	for _, m := range list(ctr, "volumeMounts") {
		mounts[str(m, "name")] = str(m, "mountPath")
		if str(m, "name") == "config" {
			configPath = str(m, "mountPath")
		}
	}
	args := list(ctr, "args")
	if len(args) != 2 || args[0] != "--config" || args[1] != configPath {
		t.Errorf("worker args %v, want --config %s (the ConfigMap's mount)", args, configPath)
	}
	secretFiles := map[string]bool{} // paths inside the secret mount
	for _, v := range list(pod, "volumes") {
		if str(v, "name") != "secrets" {
			continue
		}
		if str(v, "secret", "secretName") != str(secret, "metadata", "name") {
			t.Errorf("secret volume mounts %q, the secret is %q", str(v, "secret", "secretName"), str(secret, "metadata", "name"))
		}
		for _, it := range list(v, "secret", "items") {
			if _, ok := secretKeys[str(it, "key")]; !ok {
				t.Errorf("secret volume item %q: no such key", str(it, "key"))
			}
			secretFiles[filepath.Join(mounts["secrets"], str(it, "path"))] = true
		}
	}

	// The ConfigMap is a configuration the worker accepts, with the
	// secret files where the volume puts them.
	cm := one(t, "configmap.yaml")
	text := str(cm, "data", filepath.Base(configPath))
	if text == "" {
		t.Fatalf("configmap has no %s", filepath.Base(configPath))
	}
	var cfgFile config.Config
	if err := yaml.Unmarshal([]byte(text), &cfgFile); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for p := range secretFiles {
		local := filepath.Join(root, p)
		_ = os.MkdirAll(filepath.Dir(local), 0o700)
		if err := os.WriteFile(local, []byte(secretKeys[filepath.Base(p)].(string)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fileRefs := []string{mustField(t, text, "masterPasswordFile"), mustField(t, text, "codecKeyFile")}
	for _, z := range list(mustYAML(t, text), "managedZones") {
		fileRefs = append(fileRefs, str(z, "keyFile"))
	}
	local := text
	for _, f := range fileRefs {
		if !secretFiles[f] {
			t.Errorf("the configuration reads %s, which the secret volume does not provide (it provides %v)", f, secretFiles)
		}
		local = strings.ReplaceAll(local, `"`+f+`"`, `"`+filepath.Join(root, f)+`"`)
	}
	local = withTemporalTLS(t, local, root)
	cfgPath := filepath.Join(root, "worker.json")
	if err := os.WriteFile(cfgPath, []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--config", cfgPath}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the worker refuses the ConfigMap's configuration: %v", err)
	}
	if cfg.DirectoryDSN == "" || cfg.CodecToken == "" {
		t.Fatalf("directory DSN %q / codec token set %v: want both from the secret", cfg.DirectoryDSN, cfg.CodecToken != "")
	}
	if strings.Contains(text, "postgres://") {
		t.Errorf("the ConfigMap carries a DSN (with its password): it belongs in the secret")
	}

	// Ports and probes.
	ports := map[string]string{}
	for _, p := range list(ctr, "ports") {
		ports[str(p, "name")] = portString(get(p, "containerPort"))
	}
	for name, addr := range map[string]string{"metrics": cfg.MetricsAddr, "codec": cfg.CodecServerAddr} {
		_, p, _ := net.SplitHostPort(addr)
		if ports[name] != p {
			t.Errorf("container port %s = %s, the worker listens on %s", name, ports[name], addr)
		}
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if str(ctr, probe, "httpGet", "path") != path || str(ctr, probe, "httpGet", "port") != "metrics" {
			t.Errorf("%s = %v, want GET %s on the metrics port", probe, get(ctr, probe), path)
		}
	}
	svc := one(t, "service.yaml")
	for _, p := range list(svc, "spec", "ports") {
		if _, ok := ports[str(p, "targetPort")]; !ok {
			t.Errorf("service port %s targets %q, which the container does not name", str(p, "name"), str(p, "targetPort"))
		}
	}
	for file, path := range map[string][]any{"service.yaml": {"spec", "selector"}, "pdb.yaml": {"spec", "selector", "matchLabels"},
		"networkpolicy.yaml": {"spec", "podSelector", "matchLabels"}} {
		if sel := get(one(t, file), path...); !reflect.DeepEqual(sel, labels) {
			t.Errorf("%s selects %v, the worker pods are %v", file, sel, labels)
		}
	}

	// The starter Job reads the same secret keys and a plan it mounts.
	job := one(t, "starter-job.yaml")
	jc := get(job, "spec", "template", "spec", "containers", 0)
	for _, e := range list(jc, "env") {
		if key := str(e, "valueFrom", "secretKeyRef", "key"); key != "" {
			if _, ok := secretKeys[key]; !ok {
				t.Errorf("starter env %s reads secret key %q, which the secret does not have", str(e, "name"), key)
			}
		}
	}
	var planMount string
	for _, m := range list(jc, "volumeMounts") {
		if str(m, "name") == "plan" {
			planMount = str(m, "mountPath")
		}
	}
	found := false
	for _, a := range list(jc, "args") {
		found = found || (planMount != "" && strings.HasPrefix(a.(string), planMount+"/"))
	}
	if !found {
		t.Errorf("starter args %v name no plan under the plan mount %q", list(jc, "args"), planMount)
	}
}

// TestStaticBuild: the image is distroless/static, so every package the
// binaries need must build without cgo (the directory's SQLite driver is
// pure Go). go list resolves the build as CGO_ENABLED=0 would, without
// compiling everything a second time.
func TestStaticBuild(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../worker", "../../starter", "../../cmd/mailshift-copy")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("CGO_ENABLED=0 go list: %v\n%s", err, b)
	}
	pkgs := strings.Fields(string(b))
	for _, want := range []string{"modernc.org/sqlite", "github.com/jackc/pgx/v5", "go.temporal.io/sdk/client"} {
		if !slices.Contains(pkgs, want) {
			t.Fatalf("%s is not among the worker's dependencies: the check looks at the wrong build", want)
		}
	}
}

func portString(v any) string {
	switch p := v.(type) {
	case int:
		return strconv.Itoa(p)
	case string:
		return p
	}
	return ""
}

func mustYAML(t *testing.T, text string) doc {
	t.Helper()
	var d doc
	if err := yaml.Unmarshal([]byte(text), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustField(t *testing.T, text, key string) string {
	t.Helper()
	v := str(mustYAML(t, text), key)
	if v == "" {
		t.Fatalf("configuration has no %s", key)
	}
	return v
}

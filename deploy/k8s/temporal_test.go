package k8s

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailshift/mailshift/internal/cluster"
	"github.com/mailshift/mailshift/internal/config"
	"github.com/mailshift/mailshift/workflows"
)

// notListed are the manifests kustomization.yaml leaves out: examples of
// secrets to create from a secret store, and Jobs run by hand.
var notListed = map[string]bool{"kustomization.yaml": true, "secret.example.yaml": true, "starter-job.yaml": true,
	"temporal-tls.example.yaml": true, "temporal-namespace-job.yaml": true}

// withTemporalTLS writes a real client certificate, key and CA (from a
// throwaway CA) where root mirrors the paths the ConfigMap's temporalTLS
// names, and points the configuration text at them, so config.Load checks
// them as the worker would.
func withTemporalTLS(t *testing.T, text, root string) string {
	t.Helper()
	var cfg config.Config
	if err := jsonConfig(text, &cfg); err != nil {
		t.Fatal(err)
	}
	tt := cfg.TemporalTLS
	if !tt.On() {
		return text
	}
	certs, err := cluster.WriteCerts(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	for path, src := range map[string]string{tt.CertFile: certs.ClientCert, tt.KeyFile: certs.ClientKey, tt.CAFile: certs.CA} {
		if path == "" {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		local := filepath.Join(root, path)
		_ = os.MkdirAll(filepath.Dir(local), 0o700)
		if err := os.WriteFile(local, b, 0o600); err != nil {
			t.Fatal(err)
		}
		text = strings.ReplaceAll(text, `"`+path+`"`, `"`+local+`"`)
	}
	return text
}

// mountedFiles maps the files a pod's container sees to the secret key
// behind each, for the volumes of secret that container mounts.
func mountedFiles(t *testing.T, pod any, ctr any, secretName string) map[string]string {
	t.Helper()
	mounts := map[string]string{}
	for _, m := range list(ctr, "volumeMounts") {
		if str(m, "subPath") == "" {
			mounts[str(m, "name")] = str(m, "mountPath")
		}
	}
	files := map[string]string{}
	for _, v := range list(pod, "volumes") {
		if str(v, "secret", "secretName") != secretName || mounts[str(v, "name")] == "" {
			continue
		}
		items := list(v, "secret", "items")
		if len(items) == 0 { // every key, under its own name
			for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
				files[filepath.Join(mounts[str(v, "name")], k)] = k
			}
		}
		for _, it := range items {
			files[filepath.Join(mounts[str(v, "name")], str(it, "path"))] = str(it, "key")
		}
	}
	return files
}

// The worker, the starter Job and the namespace Job reach the frontend
// with the same client certificate, from the mailshift-temporal-tls
// secret mounted as a directory (a subPath mount would never see a renewed
// certificate); the namespace Job registers the worker's namespace with a
// retention above the reports' 72 h and exactly the search attributes the
// workflows upsert.
func TestTemporalConnection(t *testing.T) {
	tlsSecret := one(t, "temporal-tls.example.yaml")
	name := str(tlsSecret, "metadata", "name")
	keys := get(tlsSecret, "stringData").(doc)
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("%s has no key %s", name, k)
		}
	}
	var cfg config.Config
	if err := jsonConfig(str(one(t, "configmap.yaml"), "data", "worker.json"), &cfg); err != nil {
		t.Fatal(err)
	}
	tt := cfg.TemporalTLS
	if tt.CertFile == "" || tt.KeyFile == "" || tt.CAFile == "" || tt.ServerName == "" {
		t.Fatalf("the ConfigMap's temporalTLS = %+v, want certFile, keyFile, caFile and serverName (mTLS)", tt)
	}
	host := strings.Split(cfg.TemporalAddress, ":")[0]
	if tt.ServerName != host {
		t.Errorf("temporalTLS.serverName %q differs from the frontend's host %q", tt.ServerName, host)
	}

	dep := one(t, "deployment.yaml")
	pod := get(dep, "spec", "template", "spec")
	files := mountedFiles(t, pod, get(pod, "containers", 0), name)
	want := map[string]string{tt.CertFile: "tls.crt", tt.KeyFile: "tls.key", tt.CAFile: "ca.crt"}
	for path, key := range want {
		if files[path] != key {
			t.Errorf("the worker reads %s, which the %s volume does not provide as %s (it provides %v)", path, name, key, files)
		}
	}

	// The starter Job: the same files by environment, the same frontend.
	job := one(t, "starter-job.yaml")
	jpod := get(job, "spec", "template", "spec")
	jc := get(jpod, "containers", 0)
	env := map[string]string{}
	for _, e := range list(jc, "env") {
		env[str(e, "name")] = str(e, "value")
	}
	starterTLS := config.TemporalTLS{}.FromEnv(func(k string) string { return env[k] })
	if starterTLS != tt {
		t.Errorf("the starter Job's TLS environment = %+v, want the worker's %+v", starterTLS, tt)
	}
	jfiles := mountedFiles(t, jpod, jc, name)
	for path, key := range want {
		if jfiles[path] != key {
			t.Errorf("the starter reads %s, which its %s volume does not provide as %s", path, name, key)
		}
	}
	args := list(jc, "args")
	for i, a := range args {
		if a == "--temporal" && i+1 < len(args) && args[i+1] != cfg.TemporalAddress {
			t.Errorf("the starter dials %v, the worker %s", args[i+1], cfg.TemporalAddress)
		}
		if a == "--namespace" && i+1 < len(args) && args[i+1] != cfg.Namespace {
			t.Errorf("the starter uses namespace %v, the worker %s", args[i+1], cfg.Namespace)
		}
	}

	// The namespace Job.
	nj := one(t, "temporal-namespace-job.yaml")
	npod := get(nj, "spec", "template", "spec")
	nc := get(npod, "containers", 0)
	nenv := map[string]string{}
	for _, e := range list(nc, "env") {
		nenv[str(e, "name")] = str(e, "value")
	}
	if nenv["NAMESPACE"] != cfg.Namespace {
		t.Errorf("the namespace Job registers %q, the worker polls %q", nenv["NAMESPACE"], cfg.Namespace)
	}
	if nenv["TEMPORAL_ADDRESS"] != cfg.TemporalAddress {
		t.Errorf("the namespace Job dials %q, the worker %q", nenv["TEMPORAL_ADDRESS"], cfg.TemporalAddress)
	}
	if r, err := time.ParseDuration(nenv["RETENTION"]); err != nil || r < 72*time.Hour {
		t.Errorf("the namespace Job's retention %q: want a duration of at least 72h (%v)", nenv["RETENTION"], err)
	}
	sas := strings.Fields(nenv["SEARCH_ATTRIBUTES"])
	slices.Sort(sas)
	wantSAs := []string{workflows.SADomain.GetName(), workflows.SAPlan.GetName(), workflows.SAStage.GetName()}
	slices.Sort(wantSAs)
	if !slices.Equal(sas, wantSAs) {
		t.Errorf("the namespace Job registers %v, the workflows upsert %v", sas, wantSAs)
	}
	for k, path := range map[string]string{"TEMPORAL_TLS_CERT": tt.CertFile, "TEMPORAL_TLS_KEY": tt.KeyFile, "TEMPORAL_TLS_CA": tt.CAFile, "TEMPORAL_TLS_SERVER_NAME": tt.ServerName} {
		if nenv[k] != path {
			t.Errorf("the namespace Job's %s = %q, want %q as the worker", k, nenv[k], path)
		}
	}
	nfiles := mountedFiles(t, npod, nc, name)
	for path, key := range want {
		if nfiles[path] != key {
			t.Errorf("the namespace Job reads %s, which its %s volume does not provide as %s", path, name, key)
		}
	}
}

// jsonConfig decodes worker.json (JSON: the worker's own format).
func jsonConfig(text string, c *config.Config) error {
	return json.Unmarshal([]byte(text), c)
}
